"""Task runners: the process pool, async tasks on the flow's loop, and many tasks."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import weakref
from typing import Any

import pytest

from riverrun import flow, get_run_logger, task
from riverrun.exceptions import TaskRunnerError
from riverrun.futures import RiverrunFuture
from riverrun.store import RunStore
from riverrun.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner


@task
def where(n: int) -> tuple[int, int]:
    get_run_logger().info("working on %d", n)
    time.sleep(0.2)
    return n * n, os.getpid()


@task
def fail_in_worker(n: int) -> int:
    raise ValueError(f"worker says no to {n}")


@task
def unpicklable_result() -> Any:
    return threading.Lock()


@task
def die() -> None:
    os._exit(3)


def test_process_pool_runs_tasks_in_other_processes_and_records_them(store: RunStore) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def crunch() -> list[tuple[int, int]]:
        return where.map(range(4)).result()

    results = crunch()
    assert [square for square, _ in results] == [0, 1, 4, 9]
    pids = {pid for _, pid in results}
    assert os.getpid() not in pids
    assert len(pids) == 2
    [run] = store.read_flow_runs()
    task_runs = store.read_task_runs(run.id)
    assert len(task_runs) == 4
    for task_run in task_runs:
        assert task_run.state is not None and task_run.state.is_completed()
        assert task_run.start_time is not None and task_run.end_time is not None
        assert [s.name for s in store.read_states(task_run.id)] == [
            "Pending",
            "Running",
            "Completed",
        ]
    messages = [entry.message for entry in store.read_logs(run.id)]
    for n in range(4):
        assert f"working on {n}" in messages


def test_process_pool_dependencies_and_local_tasks() -> None:
    offset = 100

    @task
    def shift(value: int) -> int:  # defined here: crosses by value with cloudpickle
        return value + offset

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def chain() -> int:
        first = where.submit(3)
        second = shift.submit(first.result()[0])
        return shift.submit(second).result()

    assert chain() == 9 + 200


def test_process_pool_failures_come_back(store: RunStore) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def failing() -> None:
        fail_in_worker.submit(7)

    state = failing(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, ValueError)
    assert "worker says no to 7" in str(state.data)


def test_a_result_that_cannot_be_sent_back_fails_the_task(store: RunStore) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def returns_a_lock() -> Any:
        return unpicklable_result.submit().result()

    state = returns_a_lock(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, TaskRunnerError)
    assert "cannot be sent back" in str(state.data)
    [run] = store.read_flow_runs()
    [task_run] = store.read_task_runs(run.id)
    assert task_run.state is not None and task_run.state.is_failed()


def test_a_worker_that_dies_leaves_a_crashed_task_run(store: RunStore) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def deadly() -> None:
        die.submit()

    state = deadly(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, TaskRunnerError)
    [run] = store.read_flow_runs()
    [task_run] = store.read_task_runs(run.id)
    assert task_run.state is not None and task_run.state.is_crashed()


def test_async_tasks_from_an_async_flow_run_on_its_event_loop(store: RunStore) -> None:
    threads: list[int] = []

    @task
    async def snooze(i: int) -> int:
        threads.append(threading.get_ident())
        await asyncio.sleep(0.5)
        return i

    @flow
    async def pipeline() -> tuple[list[int], int]:
        futures = [snooze.submit(i) for i in range(10)]
        return [await future.aresult() for future in futures], threading.get_ident()

    started = time.monotonic()
    values, flow_thread = asyncio.run(pipeline())
    assert time.monotonic() - started < 1.5
    assert values == list(range(10))
    assert set(threads) == {flow_thread}
    [run] = store.read_flow_runs()
    assert len(store.read_task_runs(run.id)) == 10


def test_blocking_on_a_loop_task_from_its_loop_is_refused() -> None:
    @task
    async def snooze() -> int:
        await asyncio.sleep(0.1)
        return 1

    @flow
    async def pipeline() -> int:
        future = snooze.submit()
        with pytest.raises(RuntimeError, match=r"await future\.aresult"):
            future.result()
        return await future.aresult()

    assert asyncio.run(pipeline()) == 1


def test_the_flow_waits_for_tasks_it_did_not_wait_for() -> None:
    finished: list[bool] = []

    @task
    def slow() -> None:
        time.sleep(0.3)
        finished.append(True)

    @flow
    def fire_and_forget() -> None:
        slow.submit()

    fire_and_forget()
    assert finished == [True]


def test_ten_thousand_submitted_tasks_are_all_recorded(store: RunStore) -> None:
    @task
    def noop(i: int) -> int:
        return i

    @flow
    def many() -> int:
        futures = [noop.submit(i) for i in range(10_000)]
        return sum(f.result() for f in futures)

    assert many() == sum(range(10_000))
    [run] = store.read_flow_runs()
    task_runs = store.read_task_runs(run.id)
    assert len(task_runs) == 10_000
    assert all(r.state is not None and r.state.is_completed() for r in task_runs)


class Blob:
    """A 10 KB result that counts how many of its kind are alive."""

    alive = 0
    peak = 0
    lock = threading.Lock()

    def __init__(self) -> None:
        self.payload = bytes(10_000)
        with Blob.lock:
            Blob.alive += 1
            Blob.peak = max(Blob.peak, Blob.alive)
        weakref.finalize(self, Blob._gone)

    @staticmethod
    def _gone() -> None:
        with Blob.lock:
            Blob.alive -= 1


def test_results_nobody_references_are_freed(store: RunStore) -> None:
    @task
    def make() -> Blob:
        return Blob()

    kept: list[RiverrunFuture[Any]] = []

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def produce() -> None:
        for i in range(10_000):
            future = make.submit()
            if i % 1000 == 0:
                kept.append(future)  # the user keeps 10 of them
        for future in kept:
            future.wait()

    produce()
    # The flow's end does not join the pool's threads (shutdown(wait=False)): a thread
    # that has just handed over its last result may hold it a moment longer.
    deadline = time.monotonic() + 10
    while True:
        gc.collect()
        if Blob.alive == len(kept) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert Blob.alive == len(kept)
    # While running, only results in flight (not all 10,000) were alive at once.
    assert Blob.peak < 100, Blob.peak


def test_the_flow_waits_for_tasks_that_tasks_submit(store: RunStore) -> None:
    finished: list[str] = []

    @task
    def leaf() -> None:
        time.sleep(0.2)
        finished.append("leaf")

    @task
    def branch() -> None:
        leaf.submit()

    @flow
    def tree() -> None:
        branch.submit()

    tree()
    assert finished == ["leaf"]
    [run] = store.read_flow_runs()
    assert sorted(r.task_name for r in store.read_task_runs(run.id)) == ["branch", "leaf"]


def test_an_async_flow_waits_for_loop_tasks_it_never_awaited() -> None:
    finished: list[int] = []

    @task
    async def later(i: int) -> None:
        await asyncio.sleep(0.2)
        finished.append(i)

    @flow
    async def fire_and_forget() -> None:
        for i in range(3):
            later.submit(i)

    asyncio.run(fire_and_forget())
    assert sorted(finished) == [0, 1, 2]


def test_submitting_faster_than_tasks_run_waits_for_the_pool(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import riverrun.task_runners
    from riverrun.context import flow_run_context

    backlog = 200
    monkeypatch.setattr(riverrun.task_runners, "_BACKLOG", backlog)

    @task
    def tick(i: int) -> int:
        time.sleep(0.001)
        return i

    longest = 0

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def flood() -> None:
        nonlocal longest
        context = flow_run_context.get()
        assert context is not None
        runner = context.task_runner
        assert isinstance(runner, ThreadPoolTaskRunner)
        for i in range(backlog * 5):
            tick.submit(i)
            executor = runner._executor
            assert executor is not None
            longest = max(longest, executor.qsize())

    flood()
    assert backlog // 2 <= longest <= backlog + 1
    [run] = store.read_flow_runs()
    assert len(store.read_task_runs(run.id)) == backlog * 5
