"""timeout_seconds: the caller gets TimedOut on time, and the body is interrupted."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from riverrun import flow, task
from riverrun.exceptions import RunTimeoutError
from riverrun.states import State
from riverrun.store import RunStore


def test_sync_task_times_out_and_its_body_is_interrupted(store: RunStore) -> None:
    progress: list[int] = []
    stopped = threading.Event()

    @task(timeout_seconds=0.3)
    def busy() -> None:
        try:
            for step in range(1000):
                progress.append(step)
                time.sleep(0.01)  # returns to Python often, so the interrupt lands
        finally:
            stopped.set()

    @flow
    def pipeline() -> tuple[State, float]:
        started = time.monotonic()
        state: State = busy(return_state=True)
        return state, time.monotonic() - started

    state, elapsed = pipeline()
    assert state.name == "TimedOut" and state.is_failed()
    assert state.message == "Task run exceeded timeout of 0.3 second(s)"
    assert 0.28 <= elapsed < 0.6
    assert stopped.wait(1.0), "the body kept running after its timeout"
    steps = len(progress)
    time.sleep(0.1)
    assert len(progress) == steps < 100
    with pytest.raises(RunTimeoutError) as caught:
        state.result()
    assert isinstance(caught.value, TimeoutError)
    [run] = store.read_flow_runs()
    [task_run] = store.read_task_runs(run.id)
    assert task_run.state is not None and task_run.state.name == "TimedOut"


def test_caller_is_not_held_by_a_body_blocked_in_c() -> None:
    @task(timeout_seconds=0.2)
    def blocked() -> None:
        time.sleep(1.5)  # one C call: the thread is only interrupted when it returns

    @flow
    def pipeline() -> float:
        started = time.monotonic()
        assert blocked(return_state=True).name == "TimedOut"
        return time.monotonic() - started

    assert pipeline() < 0.6


def test_async_task_is_cancelled_at_its_timeout() -> None:
    cancelled = asyncio.Event()

    @task(timeout_seconds=0.2)
    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    @flow
    async def pipeline() -> tuple[str, float]:
        started = time.monotonic()
        state = await slow(return_state=True)
        return state.name, time.monotonic() - started

    name, elapsed = asyncio.run(pipeline())
    assert name == "TimedOut"
    assert 0.18 <= elapsed < 0.5
    assert cancelled.is_set()


def test_timed_out_task_is_retried() -> None:
    calls: list[int] = []

    @task(timeout_seconds=0.2, retries=1)
    def first_call_hangs() -> str:
        calls.append(1)
        if len(calls) == 1:
            for _ in range(100):
                time.sleep(0.01)
        return "done"

    @flow
    def pipeline() -> str:
        return first_call_hangs()

    assert pipeline() == "done"
    assert len(calls) == 2


def test_flow_timeout(store: RunStore) -> None:
    @flow(timeout_seconds=0.3)
    def slow_flow() -> None:
        for _ in range(300):
            time.sleep(0.01)

    started = time.monotonic()
    with pytest.raises(RunTimeoutError, match=r"exceeded timeout of 0\.3 second"):
        slow_flow()
    assert time.monotonic() - started < 0.8
    [run] = store.read_flow_runs()
    assert run.state is not None and run.state.name == "TimedOut"
    assert run.state.message == "Flow run exceeded timeout of 0.3 second(s)"


def test_async_flow_timeout() -> None:
    @flow(timeout_seconds=0.2)
    async def slow_flow() -> None:
        await asyncio.sleep(5)

    state = asyncio.run(slow_flow(return_state=True))
    assert state.name == "TimedOut"


def test_a_timeout_error_raised_by_the_body_is_an_ordinary_failure() -> None:
    calls: list[int] = []

    @task(retries=2)
    async def fetch() -> None:
        calls.append(1)
        await asyncio.wait_for(asyncio.sleep(1), 0.01)  # the body's own deadline

    @flow
    async def pipeline() -> tuple[str, object]:
        state: State = await fetch(return_state=True)
        return state.name, state.data

    name, error = asyncio.run(pipeline())
    assert name == "Failed" and type(error) is TimeoutError
    assert len(calls) == 3


_CHATTY = """
from riverrun import flow, get_run_logger

@flow(timeout_seconds=0.03)
def chatty() -> None:
    logger = get_run_logger()
    while True:
        logger.info("tick")

print(sum(chatty(return_state=True).name == "TimedOut" for _ in range(15)), "timed out")
"""


def test_repeated_timeouts_of_a_logging_body_never_stall_logging(tmp_path: Path) -> None:
    # In a process of its own: the interrupt lands in whatever Python code the body's
    # thread runs, a garbage-collector callback another library installed included.
    # Python then prints and drops it (the engine raises it again until the body
    # stops), but pytest's hook for such exceptions runs in that thread and can be
    # interrupted itself, which fails the test for pytest's own reasons.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env.update(RIVERRUN_HOME=str(tmp_path / "home"))
    done = subprocess.run(
        [sys.executable, "-c", _CHATTY], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "15 timed out", done.stdout + done.stderr[-3000:]
