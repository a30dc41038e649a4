"""Persisted results: storage folders, serializers, storage-key templates, the key lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from riverrun import flow, task
from riverrun.cache_policies import INPUTS
from riverrun.engine.results import ResultRef, check_key, read_result
from riverrun.exceptions import InvalidResultStorageKeyError
from riverrun.settings import get_settings
from riverrun.store import RunStore


def only_task_run(store: RunStore) -> Any:
    (run,) = store.read_flow_runs(limit=1)
    (task_run,) = store.read_task_runs(run.id)
    return task_run


def test_nothing_is_persisted_by_default(store: RunStore) -> None:
    @task
    def compute() -> int:
        return 1

    @flow
    def pipeline() -> int:
        return compute()

    pipeline()
    assert only_task_run(store).result is None
    assert not (get_settings().home / "storage").exists()


def test_persist_result_writes_a_file_the_run_names(store: RunStore) -> None:
    @task(persist_result=True)
    def compute(n: int) -> dict[str, int]:
        return {"n": n}

    @flow
    def pipeline() -> dict[str, int]:
        return compute(3)

    pipeline()
    task_run = only_task_run(store)
    ref = ResultRef.decode(task_run.result, get_settings().home)
    assert Path(ref.storage) == get_settings().home / "storage"
    assert ref.key == task_run.id and ref.serializer == "pickle"
    assert read_result(ref) == {"n": 3}


def test_flow_level_persist_and_storage_apply_to_its_tasks(store: RunStore, tmp_path: Path) -> None:
    @task
    def compute() -> list[int]:
        return [1, 2]

    @task(persist_result=False)
    def private() -> str:
        return "secret"

    @flow(persist_result=True, result_storage=tmp_path / "results", result_serializer="json")
    def pipeline() -> None:
        compute()
        private()

    pipeline()
    (run,) = store.read_flow_runs(limit=1)
    kept, skipped = store.read_task_runs(run.id)
    assert skipped.result is None and kept.result is not None
    ref = ResultRef.decode(kept.result, get_settings().home)
    assert Path(ref.storage) == tmp_path / "results"
    assert json.loads((tmp_path / "results" / ref.key).read_text()) == [1, 2]


@pytest.mark.parametrize("serializer", ["pickle", "cloudpickle", "json"])
def test_each_serializer_round_trips_through_the_cache(serializer: str) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_serializer=serializer)
    def compute(n: int) -> dict[str, Any]:
        calls.append(n)
        return {"n": n, "items": [1, 2.5, "x", None]}

    @flow
    def pipeline() -> list[dict[str, Any]]:
        return [compute(1), compute(1)]

    first, second = pipeline()
    assert first == second == {"n": 1, "items": [1, 2.5, "x", None]}
    assert calls == [1]


def test_cloudpickle_keeps_functions_json_refuses_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @task(persist_result=True, result_serializer="cloudpickle")
    def make_adder() -> Any:
        return lambda x: x + 1

    @task(persist_result=True, result_serializer="json")
    def make_set() -> Any:
        return {1, 2}

    @flow
    def pipeline() -> Any:
        return make_adder()(1), make_set()

    assert pipeline() == (2, {1, 2})  # the run completes; only persisting failed
    err = capsys.readouterr().err
    assert "could not be persisted with 'json'" in err
    assert "a resumed flow run will run this task again" in err


def test_unknown_serializer_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown result_serializer 'yaml'"):
        task(result_serializer="yaml")(lambda: 1)


def test_storage_key_template(store: RunStore, tmp_path: Path) -> None:
    @task(persist_result=True, result_storage=tmp_path, result_storage_key="{parameters[name]}.pkl")
    def greet(name: str) -> str:
        return f"hello {name}"

    @flow
    def pipeline() -> str:
        return greet("ada")

    pipeline()
    ref = ResultRef.decode(only_task_run(store).result, get_settings().home)
    assert ref.key == "ada.pkl"
    assert read_result(ref) == "hello ada"
    assert (tmp_path / "ada.pkl").is_file()


@pytest.mark.parametrize(
    "template", ["/etc/{parameters[name]}", "../{parameters[name]}", "a/../../b", ""]
)
def test_templates_leaving_the_folder_are_refused_when_decorating(template: str) -> None:
    with pytest.raises(InvalidResultStorageKeyError):
        task(persist_result=True, result_storage_key=template)(lambda name: name)


@pytest.mark.parametrize("name", ["../../escape", "/etc/passwd", "..", "a/../../b"])
def test_keys_filled_in_to_leave_the_folder_fail_the_run_before_the_body(
    store: RunStore, tmp_path: Path, name: str
) -> None:
    ran: list[str] = []

    @task(persist_result=True, result_storage=tmp_path / "r", result_storage_key="{parameters[n]}")
    def write(n: str) -> str:
        ran.append(n)
        return n

    @flow
    def pipeline() -> Any:
        return [write(name, return_state=True)]

    (state,) = pipeline()
    assert state.is_failed()
    assert isinstance(state.data, InvalidResultStorageKeyError)
    assert ran == []
    assert not any(tmp_path.parent.rglob("escape"))


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    storage.mkdir()
    (tmp_path / "outside").mkdir()
    (storage / "link").symlink_to(tmp_path / "outside")
    ref = ResultRef(str(storage), "link/file", "pickle")
    with pytest.raises(InvalidResultStorageKeyError, match="resolves outside"):
        read_result(ref)
    assert check_key("a/./b//c") == "a/b/c"


def test_same_key_computed_once_by_concurrent_threads() -> None:
    calls: list[int] = []
    started = threading.Event()

    @task(cache_policy=INPUTS)
    def slow(n: int) -> int:
        calls.append(n)
        started.set()
        time.sleep(0.3)
        return n * 10

    @flow
    def pipeline() -> list[int]:
        futures = [slow.submit(7) for _ in range(4)]
        return [f.result() for f in futures]

    assert pipeline() == [70, 70, 70, 70]
    assert calls == [7]


_COMPUTE_ONCE = """
import os, sys, time
from riverrun import flow, task
from riverrun.cache_policies import INPUTS

@task(cache_policy=INPUTS)
def slow(n: int) -> int:
    with open(os.environ["CALLS"], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(1.0)
    return n * 10

@flow
def pipeline() -> int:
    return slow(7)

print(pipeline())
"""


def test_same_key_computed_once_by_concurrent_processes(tmp_path: Path) -> None:
    script = tmp_path / "once.py"
    script.write_text(_COMPUTE_ONCE)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "RIVERRUN_HOME": str(get_settings().home), "CALLS": str(calls)}
    processes = [
        subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0]
    assert [output.strip() for output in outputs] == ["70", "70", "70"]
    assert len(calls.read_text().split()) == 1


_HIT_ELSEWHERE = """
import os
from datetime import timedelta
from riverrun import flow, task
from riverrun.tasks import task_input_hash

@task(cache_key_fn=task_input_hash, cache_expiration=timedelta(hours=1))
def expensive_query(sql: str) -> list[dict]:
    with open(os.environ["CALLS"], "a") as f:
        f.write(sql + "\\n")
    return [{"result": 42}]

@flow
def pipeline() -> list:
    return expensive_query("SELECT 1")

print(pipeline())
"""


def test_the_seed_example_hits_across_processes(tmp_path: Path, store: RunStore) -> None:
    script = tmp_path / "seed_cache.py"
    script.write_text(_HIT_ELSEWHERE)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "RIVERRUN_HOME": str(get_settings().home), "CALLS": str(calls)}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[{'result': 42}]"
    assert calls.read_text().splitlines() == ["SELECT 1"]
    assert "Finished in state Cached()" in done.stderr


def test_async_runs_of_one_key_on_one_loop_compute_once() -> None:
    import asyncio

    calls: list[int] = []

    @task(cache_policy=INPUTS)
    async def slow(n: int) -> int:
        calls.append(n)
        await asyncio.sleep(0.2)
        return n * 10

    @flow
    async def pipeline() -> list[int]:
        return list(await asyncio.gather(*(slow(3) for _ in range(3))))

    assert asyncio.run(pipeline()) == [30, 30, 30]
    assert calls == [3]


def test_an_unwritable_storage_folder_still_completes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() == 0:
        blocked = tmp_path / "a-file"
        blocked.write_text("not a folder")  # even root cannot make folders inside a file
    else:
        blocked = tmp_path / "locked"
        blocked.mkdir(mode=0o500)

    @task(cache_policy=INPUTS, result_storage=blocked / "storage")
    def compute(n: int) -> int:
        return n + 1

    @flow
    def pipeline() -> list[int]:
        return [compute(1), compute(1)]

    assert pipeline() == [2, 2]
    err = capsys.readouterr().err
    assert "Cannot lock the cache key" in err
    assert "could not be persisted" in err


def test_interleaved_tasks_each_keep_their_own_storage_and_serializer(
    store: RunStore, tmp_path: Path
) -> None:
    # A plan is reused from one run to the next only while storage and serializer match.
    @task(persist_result=True, result_storage=tmp_path / "a", result_serializer="json")
    def one(n: int) -> int:
        return n

    @task(persist_result=True, result_storage=tmp_path / "b")
    def two(n: int) -> int:
        return n

    @task(persist_result=True)
    def three(n: int) -> int:
        return n

    @flow
    def pipeline() -> None:
        for n in range(2):
            one(n)
            two(n)
            three(n)

    pipeline()
    (run,) = store.read_flow_runs(limit=1)
    seen = set()
    for task_run in store.read_task_runs(run.id):
        assert task_run.result is not None
        ref = ResultRef.decode(task_run.result, get_settings().home)
        seen.add((task_run.task_name, Path(ref.storage), ref.serializer))
    default = get_settings().home / "storage"
    assert seen == {
        ("one", tmp_path / "a", "json"),
        ("two", tmp_path / "b", "pickle"),
        ("three", default, "pickle"),
    }
