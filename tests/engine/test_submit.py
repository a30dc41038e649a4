"""task.submit() on the default thread pool, wait() and as_completed() (the seeds' use)."""

from __future__ import annotations

import time
from typing import assert_type

import pytest

from riverrun import flow, task
from riverrun.futures import RiverrunFuture, RiverrunFutureList, as_completed, wait
from riverrun.store import RunStore
from riverrun.task_runners import ThreadPoolTaskRunner


def test_seed_parallel_pipeline(store: RunStore) -> None:
    @task(log_prints=True)
    def process_item(item: int) -> int:
        time.sleep(0.5)
        return item**2

    @flow
    def parallel_pipeline(items: list[int]) -> list[int]:
        futures = [process_item.submit(item) for item in items]
        wait(futures)
        return [f.result() for f in futures]

    started = time.monotonic()
    assert parallel_pipeline(list(range(10))) == [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
    assert time.monotonic() - started < 1.5
    [run] = store.read_flow_runs()
    assert len(store.read_task_runs(run.id)) == 10


def test_future_api() -> None:
    @task
    def slow(x: int) -> int:
        time.sleep(0.2)
        return x

    @flow
    def pipeline() -> None:
        future = slow.submit(3)
        assert isinstance(future, RiverrunFuture)
        assert future.task_run_id
        assert future.state.is_pending()
        with pytest.raises(TimeoutError):
            future.result(timeout=0.01)
        future.wait()
        assert future.state.is_completed()
        assert future.result() == 3

    pipeline()


def test_as_completed_yields_in_completion_order() -> None:
    @task
    def sleep_for(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @flow
    def pipeline() -> list[float]:
        futures = [sleep_for.submit(s) for s in (0.3, 0.1, 0.2)]
        return [f.result() for f in as_completed(futures)]

    assert pipeline() == [0.1, 0.2, 0.3]


def test_wait_with_timeout_returns_done_and_not_done() -> None:
    @task
    def sleep_for(seconds: float) -> None:
        time.sleep(seconds)

    @flow
    def pipeline() -> tuple[int, int]:
        futures = [sleep_for.submit(0.01), sleep_for.submit(0.5)]
        done, not_done = wait(futures, timeout=0.25)
        return len(done), len(not_done)

    assert pipeline() == (1, 1)


def test_unobserved_failed_future_fails_the_flow(store: RunStore) -> None:
    @task
    def maybe(fail: bool) -> None:
        if fail:
            raise ValueError("one of many")

    @flow
    def pipeline() -> None:
        for i in range(10):
            maybe.submit(i == 3)

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert state.message == "1/10 states failed."


def test_observed_failure_is_the_flow_s_business() -> None:
    @task
    def explode() -> None:
        raise ValueError("handled")

    @flow
    def pipeline() -> str:
        future = explode.submit()
        future.wait()
        return "recovered" if future.state.is_failed() else "?"

    assert pipeline() == "recovered"


def test_submit_outside_a_flow_and_a_sized_pool() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    assert double.submit(21).result() == 42

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def serial() -> list[int]:
        return [f.result() for f in [double.submit(i) for i in range(3)]]

    assert serial() == [0, 2, 4]
    with pytest.raises(ValueError, match="max_workers"):
        ThreadPoolTaskRunner(max_workers=0)


def test_timed_out_flow_cancels_tasks_that_have_not_started(store: RunStore) -> None:
    started: list[int] = []

    @task
    def slow(i: int) -> None:
        started.append(i)
        time.sleep(0.4)

    @flow(timeout_seconds=0.2, task_runner=ThreadPoolTaskRunner(max_workers=1))
    def pipeline() -> None:
        for i in range(3):
            slow.submit(i)
        time.sleep(5)

    assert pipeline(return_state=True).name == "TimedOut"
    time.sleep(0.6)
    assert started == [0]


def test_futures_carry_the_task_return_type(store: RunStore) -> None:
    # assert_type is checked by mypy (run on the tests): an async task's futures give
    # what its coroutine returns.
    @task
    def double(x: int) -> int:
        return 2 * x

    @task
    async def adouble(x: int) -> int:
        return 2 * x

    @flow
    def typed() -> tuple[int, int, list[int], list[int]]:
        single = assert_type(double.submit(2), RiverrunFuture[int])
        awaited = assert_type(adouble.submit(3), RiverrunFuture[int])
        many = assert_type(double.map([1, 2]), RiverrunFutureList[int])
        amany = assert_type(adouble.map([3, 4]), RiverrunFutureList[int])
        return single.result(), awaited.result(), many.result(), amany.result()

    assert typed() == (4, 6, [2, 4], [6, 8])
