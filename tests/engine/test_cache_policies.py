"""Cache policies: which calls share a cached result, and keys stable across processes."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from riverrun import flow, task
from riverrun.cache_policies import FLOW_PARAMETERS, INPUTS, NONE, RUN_ID, TASK_SOURCE
from riverrun.engine import caching
from riverrun.hashing import UnhashableInputError, stable_digest
from riverrun.store import RunStore


def counting_task(**options: Any) -> tuple[Any, list[Any]]:
    calls: list[Any] = []

    @task(**options)
    def compute(x: Any, y: int = 0) -> Any:
        calls.append(x)
        return (x, len(calls))

    return compute, calls


def test_no_caching_unless_asked() -> None:
    compute, calls = counting_task()

    @flow
    def pipeline() -> None:
        compute(1)
        compute(1)

    pipeline()
    assert calls == [1, 1]


def test_inputs_policy_hits_on_equal_inputs(store: RunStore) -> None:
    compute, calls = counting_task(cache_policy=INPUTS)

    @flow
    def pipeline() -> list[Any]:
        return [compute(1), compute(1), compute(2), compute(1, y=1), compute({"a": 1, "b": 2})]

    first = pipeline()
    assert calls == [1, 2, 1, {"a": 1, "b": 2}]
    assert first[0] == first[1]
    runs = store.read_flow_runs()
    names = [t.state.name for t in store.read_task_runs(runs[0].id) if t.state]
    assert names == ["Completed", "Cached", "Completed", "Completed", "Completed"]


def test_inputs_minus_an_argument_ignores_it() -> None:
    compute, calls = counting_task(cache_policy=INPUTS - "y")

    @flow
    def pipeline() -> None:
        compute(1, y=1)
        compute(1, y=2)

    pipeline()
    assert calls == [1]


def test_none_policy_and_combinations() -> None:
    compute, calls = counting_task(cache_policy=NONE)
    combined, combined_calls = counting_task(cache_policy=INPUTS + NONE)

    @flow
    def pipeline() -> None:
        compute(1)
        compute(1)
        combined(1)
        combined(1)

    pipeline()
    assert calls == [1, 1] and combined_calls == [1, 1]
    assert repr(INPUTS + TASK_SOURCE) == "INPUTS + TASK_SOURCE"


def test_run_id_policy_is_per_flow_run() -> None:
    compute, calls = counting_task(cache_policy=RUN_ID)

    @flow
    def pipeline() -> None:
        compute(1)
        compute(2)  # same run, inputs ignored: a hit

    pipeline()
    pipeline()
    assert calls == [1, 1]


def test_flow_parameters_policy() -> None:
    compute, calls = counting_task(cache_policy=FLOW_PARAMETERS)

    @flow
    def pipeline(day: str) -> None:
        compute(day)

    pipeline("mon")
    pipeline("mon")
    pipeline("tue")
    assert calls == ["mon", "tue"]


def test_task_source_policy_follows_the_code() -> None:
    first, first_calls = counting_task(cache_policy=TASK_SOURCE)

    @task(cache_policy=TASK_SOURCE)
    def other(x: int) -> int:
        first_calls.append(("other", x))
        return x

    @flow
    def pipeline() -> None:
        first(1)
        first(2)
        other(1)

    pipeline()
    assert first_calls == [1, ("other", 1)]


def test_options_are_checked_when_decorating() -> None:
    def key_fn(context: object, parameters: object) -> str:
        return "k"

    with pytest.raises(ValueError, match="not both"):
        task(cache_policy=INPUTS, cache_key_fn=key_fn)(lambda: 1)
    with pytest.raises(TypeError, match="cache_policy must be a policy"):
        task(cache_policy="INPUTS")(lambda: 1)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="persist_result=False"):
        task(cache_policy=INPUTS, persist_result=False)(lambda: 1)
    with pytest.raises(TypeError, match="timedelta"):
        task(cache_key_fn=key_fn, cache_expiration=60)(lambda: 1)  # type: ignore[call-overload]


def test_unhashable_inputs_warn_and_never_cache(capsys: pytest.CaptureFixture[str]) -> None:
    compute, calls = counting_task(cache_policy=INPUTS)
    lock = threading.Lock()

    @flow
    def pipeline() -> None:
        compute(lock)
        compute(lock)

    pipeline()
    assert calls == [lock, lock]
    err = capsys.readouterr().err
    assert "argument 'x': lock value cannot be hashed" in err
    assert "this run is not cached" in err


class Colour(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int
    y: float


VALUES: list[Any] = [
    None,
    True,
    1,
    1.0,
    "1",
    b"1",
    [1, "a"],
    (1, "a"),
    {"b": 1, "a": [1, 2]},
    {"zeta", "alpha", "mid"},
    frozenset({3, 1}),
    datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    timedelta(hours=1),
    Colour.RED,
    Point(1, 2.5),
    Path("/tmp/x"),
]


def test_digests_distinguish_types_and_ignore_order() -> None:
    digests = [stable_digest(value) for value in VALUES]
    assert len(set(digests)) == len(VALUES)
    assert stable_digest({"a": 1, "b": 2}) == stable_digest({"b": 2, "a": 1})
    assert stable_digest({"x", "y", "z"}) == stable_digest({"z", "y", "x"})
    with pytest.raises(UnhashableInputError):
        stable_digest([threading.Lock()])


_DIGESTS_ELSEWHERE = """
import dataclasses, datetime, enum, sys
from datetime import UTC, timedelta
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.engine.test_cache_policies import VALUES
from riverrun.hashing import stable_digest
print("\\n".join(stable_digest(value) for value in VALUES))
"""


def test_digests_are_the_same_in_another_python_session() -> None:
    root = str(Path(__file__).parents[2])
    script = _DIGESTS_ELSEWHERE.format(root=root)
    outputs = set()
    for seed in ("1", "2"):  # string hashing differs between the two sessions
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            check=True,
        )
        outputs.add(done.stdout)
    assert outputs == {"\n".join(stable_digest(value) for value in VALUES) + "\n"}


def test_expiry_is_judged_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    clock: list[datetime.datetime] = [start]
    monkeypatch.setattr(caching, "now", lambda: clock[0])
    compute, calls = counting_task(cache_policy=INPUTS, cache_expiration=timedelta(hours=1))

    @flow
    def pipeline() -> Any:
        return compute(1)

    def at(offset: timedelta, call: Callable[[], Any] = pipeline) -> Any:
        clock[0] = start + offset
        return call()

    at(timedelta(0))
    at(timedelta(minutes=59, seconds=59))  # hit: still valid
    assert calls == [1]
    at(timedelta(hours=1))  # expired exactly at the expiration
    assert calls == [1, 1]
    at(timedelta(hours=1, minutes=30))  # the recomputed entry is valid for another hour
    assert calls == [1, 1]
    at(timedelta(hours=2, minutes=1))
    assert calls == [1, 1, 1]


def test_remembered_argument_digests_still_tell_types_and_signs_apart() -> None:
    from riverrun.hashing import digest_arguments

    calls: list[dict[str, Any]] = [
        {"x": 1},
        {"x": True},
        {"x": 1.0},
        {"x": "1"},
        {"x": b"1"},
        {"x": 0.0},
        {"x": -0.0},
        {"x": None},
        {"x": 1, "y": "a"},
        {"x": "a" * 10_000},  # too long to be remembered: hashed each time
        {"x": (1,)},  # not a scalar: hashed each time
    ]
    first = [digest_arguments(arguments) for arguments in calls]
    again = [digest_arguments(arguments) for arguments in calls]  # from the memo
    assert again == first
    assert len(set(first)) == len(calls)
    assert digest_arguments({"y": "a", "x": 1}) == digest_arguments({"x": 1, "y": "a"})
    with pytest.raises(UnhashableInputError, match="argument 'lock'"):
        digest_arguments({"lock": threading.Lock()})


def _context_of(t: object) -> Any:
    from riverrun.context import TaskRunContext

    context = TaskRunContext.__new__(TaskRunContext)
    context.task = t  # type: ignore[assignment]
    return context


def test_remembered_policy_keys_are_the_keys_they_stand_for() -> None:
    import hashlib

    from riverrun.cache_policies import CachePolicy

    @task
    def one(x: int) -> int:
        return x

    @task
    def two(x: int) -> int:  # another source
        return -x

    policy = INPUTS + TASK_SOURCE
    for t in (one, two, one, two):  # the second round comes from the memos
        context = _context_of(t)
        source = t.source_digest().hexdigest()
        assert TASK_SOURCE.compute_key(context, {}, {}) == source
        inputs = INPUTS.compute_key(context, {"x": 1}, {})
        expected = hashlib.sha256(f"INPUTS\x00{inputs}\x00TASK_SOURCE\x00{source}\x00".encode())
        assert policy.compute_key(context, {"x": 1}, {}) == expected.hexdigest()
    assert policy.compute_key(_context_of(one), {"x": 1}, {}) != policy.compute_key(
        _context_of(two), {"x": 1}, {}
    )

    class Renamed(CachePolicy):
        """A user's policy whose name changes: its compound is never remembered."""

        def __init__(self) -> None:
            self.name = "first"

        def compute_key(
            self, context: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any]
        ) -> str | None:
            return "same"

    renamed = Renamed()
    mixed = INPUTS + renamed
    before = mixed.compute_key(_context_of(one), {"x": 1}, {})
    renamed.name = "second"
    assert mixed.compute_key(_context_of(one), {"x": 1}, {}) != before
