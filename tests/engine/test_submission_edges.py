"""Edges of submitting found in review: nested async submits, timeouts that must not
cancel, long failure chains, thousands of dependents, dying workers, flow timeouts."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from riverrun import flow, task, unmapped
from riverrun.store import RunStore
from riverrun.task_runners import ProcessPoolTaskRunner

ran: list[str] = []


@task
async def child() -> int:
    await asyncio.sleep(0.1)
    ran.append("child")
    return 1


@task
async def parent() -> str:
    child.submit()  # not awaited: the flow must still wait for it
    return "parent"


@task
def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
def inc(x: int) -> int:
    return x + 1


@task
def die() -> None:
    os._exit(3)


@task
def first() -> int:
    raise ValueError("the first link broke")


def test_an_async_task_may_submit_async_tasks_it_does_not_await(store: RunStore) -> None:
    ran.clear()

    @flow
    def pipeline() -> str:
        return parent.submit().result(timeout=10)

    assert pipeline() == "parent"
    assert ran == ["child"]
    [run] = store.read_flow_runs()
    assert sorted(r.task_name for r in store.read_task_runs(run.id)) == ["child", "parent"]


def test_async_map_with_unmapped_and_direct_calls_with_annotations() -> None:
    @task
    async def add(x: int, y: int) -> int:
        return x + y

    @flow
    async def pipeline() -> tuple[list[int], int]:
        futures = add.map([1, 2, 3], unmapped(10))
        direct = await add(1, unmapped(2))  # type: ignore[call-overload]
        return [await f.aresult() for f in futures], direct

    assert asyncio.run(pipeline()) == ([11, 12, 13], 3)


def test_aresult_timeout_leaves_the_task_running() -> None:
    @task
    async def sleepy() -> str:
        await asyncio.sleep(0.4)
        return "done"

    @flow
    async def pipeline() -> str:
        future = sleepy.submit()
        with pytest.raises(TimeoutError):
            await future.aresult(timeout=0.05)
        return await future.aresult()

    assert asyncio.run(pipeline()) == "done"


def test_a_long_chain_after_a_failure_ends_quickly_with_short_messages() -> None:
    @flow
    def chain() -> Any:
        future = first.submit()
        for _ in range(300):
            future = inc.submit(future)
        future.wait()
        return future.state

    started = time.monotonic()
    state = chain(return_state=True)
    assert time.monotonic() - started < 20
    assert state.is_failed()
    assert state.name == "NotReady"
    assert state.message is not None and len(state.message) < 400


def test_map_wait_for_applies_to_every_run() -> None:
    @flow
    def pipeline() -> list[float]:
        gate = slow.submit(0.3)
        started = time.monotonic()
        futures = inc.map([1, 2, 3], wait_for=(f for f in [gate]))
        futures.wait()
        return [time.monotonic() - started]

    [elapsed] = pipeline()
    assert elapsed >= 0.25


@pytest.mark.slow
def test_thousands_of_dependents_of_one_process_pool_run() -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def fan_out() -> int:
        source = inc.submit(0)
        return sum(f.result(timeout=120) for f in [inc.submit(source) for _ in range(20_000)])

    assert fan_out() == 2 * 20_000


def test_a_dead_worker_crashes_only_its_own_run(store: RunStore) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def survive() -> int:
        doomed = die.submit()
        doomed.wait()
        assert doomed.state.is_crashed()
        return inc.submit(41).result()

    assert survive() == 42  # the body looked at the crash: it is the body's business
    [run] = store.read_flow_runs()
    states = {r.task_name: r.state.name for r in store.read_task_runs(run.id) if r.state}
    assert states == {"die": "Crashed", "inc": "Completed"}


def test_a_timed_out_flow_never_starts_queued_process_runs(store: RunStore) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2), timeout_seconds=1)
    def too_slow() -> list[float]:
        return [f.result() for f in slow.map([2.0, 2.0, 2.0, 2.0])]

    assert too_slow(return_state=True).name == "TimedOut"
    [run] = store.read_flow_runs()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        names = sorted(r.state.name for r in store.read_task_runs(run.id) if r.state)
        if names == ["Cancelled", "Cancelled", "Completed", "Completed"]:
            break
        time.sleep(0.2)
    assert names == ["Cancelled", "Cancelled", "Completed", "Completed"]
