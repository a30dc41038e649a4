"""Wrong hits and wrong reuses found in review, each pinned by a test."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from riverrun import flow, resume_flow_run, task
from riverrun.cache_policies import FLOW_PARAMETERS, INPUTS, NONE, RUN_ID
from riverrun.engine.results import ResultRef, read_result, write_result
from riverrun.exceptions import InvalidResultStorageKeyError, ResumeError
from riverrun.hashing import stable_digest
from riverrun.settings import get_settings
from riverrun.store import RunStore


def test_builtin_policies_never_hand_one_task_another_tasks_result() -> None:
    @task(cache_policy=INPUTS)
    def add(a: int, b: int) -> int:
        return a + b

    @task(cache_policy=INPUTS)
    def mul(a: int, b: int) -> int:
        return a * b

    @task(cache_policy=RUN_ID)
    def load() -> str:
        return "loaded"

    @task(cache_policy=RUN_ID)
    def other() -> str:
        return "other"

    @flow
    def pipeline() -> tuple[int, int, str, str]:
        return add(2, 5), mul(2, 5), load(), other()

    assert pipeline() == (7, 10, "loaded", "other")


def test_a_fixed_storage_key_never_gives_a_stale_hit(tmp_path: Path) -> None:
    @task(cache_policy=INPUTS, result_storage=tmp_path, result_storage_key="fixed.pkl")
    def square(x: int) -> int:
        return x * x

    @flow
    def pipeline() -> tuple[int, int, int]:
        return square(2), square(3), square(2)

    assert pipeline() == (4, 9, 4)


def test_unusual_inputs_never_fail_a_persisting_run(store: RunStore) -> None:
    @dataclasses.dataclass
    class Job:
        name: str
        scratch: list[int] = dataclasses.field(init=False)

    @task(persist_result=True)
    def run(job: Any) -> str:
        return "done"

    @flow
    def pipeline() -> list[str]:
        return [run(mock.MagicMock()), run(Job("x"))]

    assert pipeline() == ["done", "done"]


class PlainSettings:
    """An object whose stored (JSON) form is its repr: only its memory address."""

    def __init__(self, rate: int) -> None:
        self.rate = rate


def test_flow_parameters_policy_hashes_the_real_values() -> None:
    @task(cache_policy=FLOW_PARAMETERS)
    def price(rate: int) -> int:
        return 100 * rate

    @flow
    def pipeline(settings: Any) -> int:
        return price(settings.rate)

    assert pipeline(PlainSettings(1)) == 100
    assert pipeline(PlainSettings(2)) == 200
    assert pipeline(PlainSettings(1)) == 100


def test_resume_calls_the_flow_with_its_exact_parameters(store: RunStore) -> None:
    seen: list[tuple[str, ...]] = []
    broken = [True]

    @flow
    def pipeline(day, pair, tags):  # type: ignore[no-untyped-def]
        seen.append((type(day).__name__, type(pair).__name__, type(tags).__name__))
        if broken[0]:
            raise RuntimeError("boom")
        return day

    day = datetime.date(2026, 11, 21)
    pipeline(day, (1, 2), frozenset({"a"}), return_state=True)
    broken[0] = False
    (run,) = store.read_flow_runs()
    assert resume_flow_run(run.id, flow=pipeline).result() == day
    assert seen == [("date", "tuple", "frozenset")] * 2


def test_resume_refuses_parameters_that_could_not_be_kept(store: RunStore) -> None:
    @flow
    def pipeline(lock: Any) -> None:
        raise RuntimeError("boom")

    import threading

    pipeline(threading.Lock(), return_state=True)
    (run,) = store.read_flow_runs()
    with pytest.raises(ResumeError, match="could not be kept exactly"):
        resume_flow_run(run.id, flow=pipeline)
    state = resume_flow_run(run.id, flow=pipeline, parameters={"lock": threading.Lock()})
    assert state.is_failed()  # it ran (and failed again), with the parameters given


def test_resume_of_an_async_flow_from_sync_code(store: RunStore) -> None:
    broken = [True]

    @task(persist_result=True)
    async def fetch() -> int:
        return 1

    @flow
    async def pipeline() -> int:
        value = await fetch()
        if broken[0]:
            raise RuntimeError("boom")
        return value + 1

    asyncio.run(pipeline(return_state=True))
    broken[0] = False
    (run,) = store.read_flow_runs()
    state = resume_flow_run(run.id, flow=pipeline)
    assert state.is_completed() and state.result() == 2


def test_tasks_from_one_factory_are_told_apart_on_resume(store: RunStore) -> None:
    order = ["upper", "lower"]
    broken = [True]

    def make(kind: str) -> Any:
        @task(name=kind, persist_result=True)
        def convert(text: str) -> str:
            return text.upper() if kind == "upper" else text.lower()

        return convert

    converters = {kind: make(kind) for kind in ("upper", "lower")}

    @flow
    def pipeline() -> dict[str, str]:
        out = {kind: converters[kind]("Hi") for kind in order}
        if broken[0]:
            raise RuntimeError("boom")
        return out

    pipeline(return_state=True)
    order.reverse()  # the calls come in the other order this time
    broken[0] = False
    (run,) = store.read_flow_runs()
    assert resume_flow_run(run.id, flow=pipeline).result() == {"upper": "HI", "lower": "hi"}


def test_a_symlink_made_after_a_first_write_is_still_refused(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    ref = ResultRef(str(storage), "sub/1.pkl", "pickle")
    write_result(ref, 1)
    assert read_result(ref) == 1
    outside = tmp_path / "outside"
    outside.mkdir()
    (storage / "sub" / "1.pkl").unlink()
    (storage / "sub").rmdir()
    (storage / "sub").symlink_to(outside)
    with pytest.raises(InvalidResultStorageKeyError, match="resolves outside"):
        write_result(ref, 2)
    assert list(outside.iterdir()) == []


def test_with_options_can_turn_caching_off_or_switch_style() -> None:
    calls: Counter[str] = Counter()

    @task(cache_policy=INPUTS)
    def compute(x: int) -> int:
        calls["compute"] += 1
        return x

    uncached = compute.with_options(cache_policy=NONE)
    keyed = compute.with_options(cache_key_fn=lambda context, parameters: "one-key")

    @flow
    def pipeline() -> None:
        uncached(1)
        uncached(1)
        keyed(1)
        keyed(2)

    pipeline()
    assert calls["compute"] == 3
    assert uncached.cache_policy is None and keyed.cache_key_fn is not None


def test_bytes_and_bytearray_differ() -> None:
    assert stable_digest(b"x") != stable_digest(bytearray(b"x"))


_TOP_LEVEL_CALL = """
import os
from riverrun import flow, task

@task
def step() -> int:
    with open(os.environ["CALLS"], "a") as f:
        f.write("step\\n")
    if os.environ.get("BREAK"):
        raise RuntimeError("broken")
    return 1

@flow(persist_result=True)
def seed_style() -> int:
    return step()

seed_style()  # called at the top level, as the seeds' scripts do
"""


def test_retry_of_a_script_calling_its_flow_at_top_level(tmp_path: Path, store: RunStore) -> None:
    script = tmp_path / "seed_style.py"
    script.write_text(_TOP_LEVEL_CALL)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "RIVERRUN_HOME": str(get_settings().home), "CALLS": str(calls)}
    subprocess.run([sys.executable, str(script)], env={**env, "BREAK": "1"}, capture_output=True)
    (run,) = store.read_flow_runs()
    done = subprocess.run(
        [sys.executable, "-m", "riverrun", "flow-run", "retry", run.id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert calls.read_text().split() == ["step", "step"]  # not a third, from the load
    assert len(store.read_flow_runs()) == 1
    assert "Skipped the call of flow 'seed-style'" in done.stderr
