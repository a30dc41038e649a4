"""async flows and tasks, and calls across the sync/async boundary."""

from __future__ import annotations

import asyncio
import time

from riverrun import flow, task
from riverrun.store import RunStore


def test_async_tasks_gathered_in_an_async_flow_run_concurrently(store: RunStore) -> None:
    @task
    async def wait_then(value: int) -> int:
        await asyncio.sleep(0.3)
        return value

    @flow
    async def pipeline() -> list[int]:
        return list(await asyncio.gather(*(wait_then(i) for i in range(5))))

    started = time.monotonic()
    assert asyncio.run(pipeline()) == [0, 1, 2, 3, 4]
    assert time.monotonic() - started < 0.9  # sequentially it would take 1.5 s
    [run] = store.read_flow_runs()
    task_runs = store.read_task_runs(run.id)
    assert len(task_runs) == 5
    assert all(t.state is not None and t.state.is_completed() for t in task_runs)
    assert sorted(t.dynamic_key for t in task_runs) == [0, 1, 2, 3, 4]


def test_sync_task_called_from_an_async_flow() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    async def pipeline() -> int:
        return add(1, 2)

    assert asyncio.run(pipeline()) == 3


def test_sync_flow_calling_an_async_task_gets_its_result() -> None:
    @task
    async def fetch() -> str:
        await asyncio.sleep(0.01)
        return "payload"

    @flow
    def pipeline() -> str:
        return fetch()  # type: ignore[return-value]  # sync callers get the value

    assert pipeline() == "payload"


def test_async_subflow_called_from_a_sync_flow(store: RunStore) -> None:
    @flow
    async def child(x: int) -> int:
        await asyncio.sleep(0)
        return x * 10

    @flow
    def parent() -> int:
        return child(4)  # type: ignore[return-value]  # sync callers get the value

    assert parent() == 40
    runs = store.read_flow_runs()
    assert {r.flow_name for r in runs} == {"parent", "child"}


def test_sync_subflow_calling_async_task_inside_an_async_flow() -> None:
    @task
    async def fetch() -> int:
        await asyncio.sleep(0)
        return 7

    @flow
    def inner() -> int:
        # A sync body on a thread whose event loop is busy running the outer flow.
        return fetch()  # type: ignore[return-value]  # sync callers get the value

    @flow
    async def outer() -> int:
        return inner()

    assert asyncio.run(outer()) == 7


def test_async_task_outside_a_flow_is_awaitable() -> None:
    @task(retries=1)
    async def flaky(calls: list[int]) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError
        return len(calls)

    assert asyncio.run(flaky([])) == 2


def test_sync_callers_reuse_one_event_loop_per_thread() -> None:
    loops: list[object] = []

    @task
    async def which_loop() -> None:
        loops.append(asyncio.get_running_loop())

    @flow
    def pipeline() -> None:
        # A sync flow gets the async task's result; there is no coroutine to await.
        which_loop()  # type: ignore[unused-coroutine]
        which_loop()  # type: ignore[unused-coroutine]

    pipeline()
    pipeline()
    assert len(loops) == 4 and len(set(map(id, loops))) == 1
