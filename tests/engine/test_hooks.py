"""State hooks: called once, with the right objects and state; a raising hook is harmless."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from riverrun import Flow, Task, flow, task
from riverrun.states import Cancelled, State
from riverrun.store import FlowRun, RunStore, TaskRun
from tests.engine.conftest import Mode


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []  # (hook, flow/task, run, state)

    def hook(self, label: str) -> Any:
        def record(
            obj: Flow[..., Any] | Task[..., Any], run: FlowRun | TaskRun, state: State
        ) -> None:
            assert isinstance(obj, Flow | Task)
            assert isinstance(run, FlowRun | TaskRun)
            self.calls.append((label, obj.name, run.name, state.name))

        return record


def test_flow_completion_and_running_hooks(mode: Mode) -> None:
    recorder = Recorder()

    @mode.flow(
        on_completion=[recorder.hook("completion")],
        on_failure=[recorder.hook("failure")],
        on_running=[recorder.hook("running")],
        flow_run_name="hooked",
    )
    def pipeline() -> int:
        return 1

    assert mode.run(pipeline) == 1
    assert recorder.calls == [
        ("running", "pipeline", "hooked", "Running"),
        ("completion", "pipeline", "hooked", "Completed"),
    ]


def test_flow_failure_hook_gets_the_message(mode: Mode) -> None:
    recorder = Recorder()
    messages: list[str | None] = []

    def on_failure(flow: Flow[..., Any], flow_run: FlowRun, state: State) -> None:
        messages.append(state.message)

    @mode.flow(
        on_failure=[recorder.hook("failure"), on_failure], on_completion=[recorder.hook("c")]
    )
    def pipeline() -> None:
        raise RuntimeError("bad input")

    with pytest.raises(RuntimeError):
        mode.run(pipeline)
    assert [call[0] for call in recorder.calls] == ["failure"]
    assert messages == ["Flow run encountered an exception: RuntimeError: bad input"]


def test_task_hooks(mode: Mode) -> None:
    recorder = Recorder()

    @mode.task(on_completion=[recorder.hook("done")], on_failure=[recorder.hook("failed")])
    def maybe(fail: bool) -> None:
        if fail:
            raise ValueError("no")

    @mode.flow()
    def pipeline() -> None:
        maybe(False)
        maybe(True, return_state=True)

    mode.run(pipeline)
    assert [(c[0], c[1], c[3]) for c in recorder.calls] == [
        ("done", "maybe", "Completed"),
        ("failed", "maybe", "Failed"),
    ]


def test_task_failure_hook_runs_once_after_all_retries(mode: Mode) -> None:
    recorder = Recorder()

    @mode.task(retries=2, on_failure=[recorder.hook("failed")])
    def flaky() -> None:
        raise OSError("down")

    @mode.flow()
    def pipeline() -> None:
        flaky()

    with pytest.raises(OSError):
        mode.run(pipeline)
    assert len(recorder.calls) == 1


def test_raising_hook_is_logged_and_changes_no_state(
    mode: Mode, store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    after: list[str] = []

    def broken(flow: Flow[..., Any], flow_run: FlowRun, state: State) -> None:
        raise RuntimeError("hook bug")

    def later(flow: Flow[..., Any], flow_run: FlowRun, state: State) -> None:
        after.append(state.name)

    @mode.flow(on_completion=[broken, later])
    def pipeline() -> str:
        return "fine"

    assert mode.run(pipeline) == "fine"
    assert after == ["Completed"]
    assert "Hook 'broken' failed; the state is unchanged" in capsys.readouterr().err
    [run] = store.read_flow_runs()
    assert run.state is not None and run.state.name == "Completed"


def test_crashed_hook_on_keyboard_interrupt(store: RunStore) -> None:
    recorder = Recorder()

    @flow(on_crashed=[recorder.hook("crashed")], on_failure=[recorder.hook("failed")])
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert [c[0] for c in recorder.calls] == ["crashed"]
    [run] = store.read_flow_runs()
    assert run.state is not None and run.state.is_crashed()


def test_cancellation_hook() -> None:
    recorder = Recorder()

    @flow(on_cancellation=[recorder.hook("cancelled")])
    def stops() -> State:
        return Cancelled("operator said stop")

    assert stops(return_state=True).is_cancelled()

    @flow(on_cancellation=[recorder.hook("cancelled-async")])
    async def cancelled_async() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled_async())
    assert [c[0] for c in recorder.calls] == ["cancelled", "cancelled-async"]


def test_async_hooks_are_awaited() -> None:
    seen: list[str] = []

    async def on_completion(flow: Flow[..., Any], flow_run: FlowRun, state: State) -> None:
        await asyncio.sleep(0)
        seen.append(state.name)

    @flow(on_completion=[on_completion])
    def sync_flow() -> None:
        pass

    @flow(on_completion=[on_completion])
    async def async_flow() -> None:
        pass

    sync_flow()
    asyncio.run(async_flow())
    assert seen == ["Completed", "Completed"]


def test_hooks_registered_with_decorator_methods() -> None:
    seen: list[str] = []

    @task
    def work() -> int:
        return 3

    @work.on_completion
    def remember(task: Task[..., Any], task_run: TaskRun, state: State) -> None:
        seen.append(f"{task.name}:{state.result()}")

    @flow
    def pipeline() -> int:
        return work()

    assert pipeline() == 3
    assert seen == ["work:3"]
