"""cache_key_fn / cache_expiration / refresh_cache, with results kept on disk."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from riverrun import flow, task
from riverrun.hashing import UnhashableInputError
from riverrun.settings import get_settings
from riverrun.store import RunStore
from riverrun.tasks import task_input_hash


def test_same_inputs_return_the_cached_result(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []

    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(hours=1))
    def expensive_query(sql: str) -> list[dict[str, int]]:
        calls.append(sql)
        return [{"result": 42}]

    @flow
    def pipeline() -> tuple[object, object, object]:
        r1 = expensive_query("SELECT 1")
        r2 = expensive_query("SELECT 1")
        r3 = expensive_query("SELECT 2")
        return r1, r2, r3

    r1, r2, _ = pipeline()
    assert r1 == r2 == [{"result": 42}]
    assert calls == ["SELECT 1", "SELECT 2"]
    assert "Finished in state Cached()" in capsys.readouterr().err
    # A new flow run (another process could do the same) still hits the cache.
    pipeline()
    assert calls == ["SELECT 1", "SELECT 2"]
    runs = store.read_flow_runs()
    names = [t.state.name for t in store.read_task_runs(runs[0].id) if t.state]
    assert names == ["Cached", "Cached", "Cached"]


def test_expired_entries_are_recomputed() -> None:
    calls: list[int] = []

    # Long enough that the second call is a hit even on a loaded machine.
    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(seconds=1.5))
    def compute(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def pipeline() -> None:
        compute(1)
        compute(1)
        time.sleep(1.6)
        compute(1)

    pipeline()
    assert calls == [1, 1]


def test_refresh_cache_recomputes_and_updates() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda context, parameters: "fixed-key")
    def compute() -> int:
        calls.append(1)
        return len(calls)

    @flow
    def pipeline() -> list[int]:
        return [compute(), compute.with_options(refresh_cache=True)(), compute()]

    assert pipeline() == [1, 2, 2]


def test_cache_key_fn_errors_disable_caching(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(context: object, parameters: dict[str, object]) -> str:
        raise RuntimeError("no key")

    @task(cache_key_fn=broken)
    def compute() -> int:
        return 5

    @flow
    def pipeline() -> int:
        return compute() + compute()

    assert pipeline() == 10
    err = capsys.readouterr().err
    assert "Cache policy cache_key_fn=" in err
    assert "failed (RuntimeError: no key); this run is not cached" in err


def test_unpicklable_results_are_not_cached_but_the_task_completes() -> None:
    @task(cache_key_fn=task_input_hash)
    def make_lambda() -> object:
        return lambda: None

    @flow
    def pipeline() -> bool:
        return callable(make_lambda())

    assert pipeline() is True


def test_results_stay_inside_the_storage_folder() -> None:
    @task(cache_key_fn=lambda context, parameters: "../../etc/passwd")
    def compute() -> int:
        return 1

    @flow
    def pipeline() -> int:
        return compute()

    pipeline()
    storage = get_settings().home / "storage"
    files = [p for p in storage.iterdir() if not p.name.startswith(".")]
    assert len(files) == 1 and files[0].parent == storage
    assert not Path(storage, "../../etc/passwd").resolve().is_relative_to(storage)


def test_task_input_hash_is_stable_and_follows_the_code() -> None:
    from riverrun.context import TaskRunContext

    @task
    def one(data: dict[str, int]) -> None:
        pass

    @task
    def two(data: dict[str, int]) -> None:
        pass

    def key(t: object, arguments: dict[str, object]) -> str | None:
        context = TaskRunContext.__new__(TaskRunContext)
        context.task = t  # type: ignore[assignment]
        return task_input_hash(context, arguments)

    assert key(one, {"data": {"a": 1, "b": 2}}) == key(one, {"data": {"b": 2, "a": 1}})
    assert key(one, {"data": {"a": 1}}) != key(one, {"data": {"a": 2}})
    assert key(one, {"data": {"a": 1}}) != key(two, {"data": {"a": 1}})
    with pytest.raises(UnhashableInputError, match="argument 'data'"):
        key(one, {"data": threading.Lock()})


_REFRESH_ELSEWHERE = """
from riverrun import flow, task

@task(cache_key_fn=lambda context, parameters: "shared-key", refresh_cache=True)
def produce() -> list[str]:
    return ["from the other process"]

@flow
def refresh() -> list[str]:
    return produce()

refresh()
"""


def test_a_hit_sees_a_result_another_process_refreshed(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    @task(cache_key_fn=lambda context, parameters: "shared-key")
    def produce() -> list[str]:
        return ["from this process"]

    @flow
    def pipeline() -> list[str]:
        return produce()

    first = pipeline()
    assert first == ["from this process"]
    first.append("mutated by the caller")
    assert pipeline() == ["from this process"]  # each hit is a fresh copy
    script = tmp_path / "refresh.py"
    script.write_text(_REFRESH_ELSEWHERE)
    env = {**os.environ, "RIVERRUN_HOME": str(get_settings().home)}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert pipeline() == ["from the other process"]


def test_a_new_home_never_sees_the_remembered_cache_of_a_closed_one(tmp_path: Path) -> None:
    # What a test suite with a fresh home per test does: the second home's first call
    # must compute, even if its store object lands where the closed one was in memory.
    import gc

    from riverrun.engine import caching
    from riverrun.testing import riverrun_test_harness

    calls: list[int] = []

    @task(cache_key_fn=task_input_hash)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    @flow
    def pipeline() -> int:
        return double(1)

    for home in ("first", "second"):
        with riverrun_test_harness(tmp_path / home) as run_store:
            assert pipeline() == 2
            assert pipeline() == 2
            assert run_store in caching._entries
        del run_store
        gc.collect()
        assert len(caching._entries) == 0, "a closed store's entries were kept"
    assert calls == [1, 1]


def _result_files() -> list[Path]:
    storage = get_settings().home / "storage"
    return [path for path in storage.iterdir() if path.is_file() and not path.name.startswith(".")]


def test_a_remembered_hit_notices_its_file_was_deleted() -> None:
    # What a `riverrun cache clear` in another process does to this one: the entry this
    # process remembers stays, but its file goes; the next call must compute again.
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    @flow
    def pipeline() -> int:
        return double(1)

    assert pipeline() == 2
    assert pipeline() == 2
    assert calls == [1]
    (path,) = _result_files()
    path.unlink()
    assert pipeline() == 2
    assert calls == [1, 1]
    assert pipeline() == 2  # and the recomputed result is a hit again
    assert calls == [1, 1]


def test_within_a_flow_run_a_remembered_hit_checks_its_file_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A hit does not stat its file every time: the first hit of a flow run checks it,
    # later ones only once RECHECK_SECONDS have passed since. A file deleted in between
    # is noticed at the next check (and by the next flow run, see the test above).
    from riverrun.engine import caching

    clock = [1000.0]
    monkeypatch.setattr(caching, "monotonic", lambda: clock[0])
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    @flow
    def pipeline() -> list[int]:
        computed = []
        double(1)  # the first hit of this run: checked
        computed.append(len(calls))
        for path in _result_files():
            path.unlink()
        double(1)  # within the interval: the bytes held here
        computed.append(len(calls))
        clock[0] += caching.RECHECK_SECONDS
        double(1)  # the interval passed: checked, gone, computed again
        computed.append(len(calls))
        double(1)  # and that new result is a hit
        computed.append(len(calls))
        return computed

    @flow
    def fill() -> int:
        return double(1)

    assert fill() == 2  # the miss that fills the cache
    assert calls == [1]
    assert pipeline() == [1, 1, 2, 2]
    assert len(_result_files()) == 1


def test_a_remembered_hit_rereads_a_file_rewritten_with_other_bytes() -> None:
    # Another process refreshing the key rewrites the same file: the kept bytes (and
    # the remembered entry, whose digest no longer matches) must not be used.
    import pickle

    calls: list[int] = []

    @task(cache_key_fn=lambda context, parameters: "rewritten-key")
    def produce() -> str:
        calls.append(1)
        return "first"

    @flow
    def pipeline() -> str:
        return produce()

    assert pipeline() == "first"
    assert pipeline() == "first"
    (path,) = _result_files()
    path.write_bytes(pickle.dumps("written elsewhere, with no entry for it"))
    assert pipeline() == "first"  # the digest the entry recorded no longer matches
    assert calls == [1, 1]


def test_remembered_task_input_hash_keys_are_the_keys_it_gives(store: RunStore) -> None:
    from riverrun.cache_policies import CacheKeyFnPolicy
    from riverrun.context import TaskRunContext

    @task(cache_key_fn=task_input_hash)
    def one(x: object) -> object:
        return x

    @task(cache_key_fn=task_input_hash)
    def two(x: object) -> object:  # another source: other keys for the same inputs
        return [x]

    def direct(t: object, arguments: dict[str, object]) -> str | None:
        context = TaskRunContext.__new__(TaskRunContext)
        context.task = t  # type: ignore[assignment]
        return task_input_hash(context, arguments)

    inputs: list[object] = [1, True, 1.0, -0.0, 0.0, "1", b"1", None, (1,)]

    @flow
    def pipeline() -> None:
        for value in inputs:
            one(value)
            two(value)
            one(value)  # a hit, with the remembered key

    pipeline()
    recorded = [
        (t.task_name, t.cache_key) for t in store.read_task_runs(store.read_flow_runs()[0].id)
    ]
    expected = [(t.name, direct(t, {"x": value})) for value in inputs for t in (one, two, one)]
    assert sorted(recorded, key=str) == sorted(expected, key=str)
    assert len({key for _, key in expected}) == 2 * len(inputs)
    policy = one.cache_policy
    assert isinstance(policy, CacheKeyFnPolicy) and policy._pure
    other = CacheKeyFnPolicy(lambda context, parameters: "k")
    assert not other._pure  # any other function is called on every run
