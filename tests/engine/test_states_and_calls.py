"""Decorators, names, states, return_state, and failures reaching the caller."""

from __future__ import annotations

import re

import pytest

from riverrun import Flow, Task, flow, task
from riverrun.exceptions import UnfinishedRun
from riverrun.states import (
    AwaitingRetry,
    Cached,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Late,
    Paused,
    Pending,
    Retrying,
    Running,
    Scheduled,
    State,
    StateType,
    TimedOut,
)
from riverrun.store import RunStore


def test_bare_and_configured_decorators_name_things() -> None:
    @task
    def fetch_data() -> int:
        return 1

    @task(name="custom")
    def other() -> int:
        return 2

    @flow
    def example_pipeline() -> int:
        return fetch_data() + other()

    @flow(name="Named Flow")
    def named() -> None:
        pass

    assert isinstance(fetch_data, Task) and fetch_data.name == "fetch_data"
    assert other.name == "custom"
    assert isinstance(example_pipeline, Flow) and example_pipeline.name == "example-pipeline"
    assert named.name == "Named Flow"
    assert example_pipeline() == 3


def test_with_options_returns_a_changed_copy() -> None:
    @task(retries=1)
    def base() -> int:
        return 1

    copy = base.with_options(name="copy", retries=3)
    assert copy is not base
    assert (copy.name, copy.policy.retries) == ("copy", 3)
    assert (base.name, base.policy.retries) == ("base", 1)
    assert copy.fn is base.fn

    @flow
    def pipeline() -> int:
        return 1

    renamed = pipeline.with_options(name="other", retries=2)
    assert (renamed.name, renamed.policy.retries, pipeline.name) == ("other", 2, "pipeline")
    with pytest.raises(TypeError, match="Unknown task option"):
        base.with_options(retires=2)


@pytest.mark.parametrize(
    ("state", "type_", "name", "check"),
    [
        (Scheduled(), StateType.SCHEDULED, "Scheduled", "is_scheduled"),
        (Late(), StateType.SCHEDULED, "Late", "is_scheduled"),
        (AwaitingRetry(), StateType.SCHEDULED, "AwaitingRetry", "is_scheduled"),
        (Pending(), StateType.PENDING, "Pending", "is_pending"),
        (Running(), StateType.RUNNING, "Running", "is_running"),
        (Retrying(), StateType.RUNNING, "Retrying", "is_running"),
        (Completed(), StateType.COMPLETED, "Completed", "is_completed"),
        (Cached(), StateType.COMPLETED, "Cached", "is_completed"),
        (Failed(), StateType.FAILED, "Failed", "is_failed"),
        (TimedOut(), StateType.FAILED, "TimedOut", "is_failed"),
        (Crashed(), StateType.CRASHED, "Crashed", "is_crashed"),
        (Cancelling(), StateType.CANCELLING, "Cancelling", "is_cancelling"),
        (Cancelled(), StateType.CANCELLED, "Cancelled", "is_cancelled"),
        (Paused(), StateType.PAUSED, "Paused", "is_paused"),
    ],
)
def test_state_constructors(state: State, type_: StateType, name: str, check: str) -> None:
    assert state.type is type_
    assert state.name == name
    assert getattr(state, check)() is True
    assert repr(state) == f"{name}()"


def test_state_result_and_message() -> None:
    assert Completed(data=5).result() == 5
    error = ValueError("boom")
    failed = Failed("it broke", data=error)
    assert repr(failed) == "Failed('it broke')"
    assert failed.message == "it broke"
    with pytest.raises(ValueError, match="boom") as caught:
        failed.result()
    assert caught.value is error
    assert failed.result(raise_on_failure=False) is error
    with pytest.raises(UnfinishedRun):
        Running().result()


def test_return_state_on_tasks_and_flows() -> None:
    @task
    def double(x: int) -> int:
        return x * 2

    @task
    def explode() -> None:
        raise RuntimeError("kaput")

    @flow
    def pipeline() -> tuple[State, State]:
        return double(4, return_state=True), explode(return_state=True)

    flow_state = pipeline(return_state=True)
    assert flow_state.is_completed()
    good, bad = flow_state.result()
    assert good.is_completed() and good.result() == 8
    assert bad.is_failed()
    assert bad.message == "Task run encountered an exception: RuntimeError: kaput"
    with pytest.raises(RuntimeError, match="kaput"):
        bad.result()


def test_failing_task_fails_the_flow_and_the_call_raises_the_original(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    class CustomError(Exception):
        pass

    @task
    def explode() -> None:
        raise CustomError("the original")

    @flow
    def pipeline() -> None:
        explode()

    with pytest.raises(CustomError, match="the original"):
        pipeline()
    err = capsys.readouterr().err
    assert re.search(
        r"^\d\d:\d\d:\d\d\.\d{3} \| ERROR   \| Flow run '[a-z]+-[a-z]+' - Finished in state "
        r"Failed\('Flow run encountered an exception: CustomError: the original'\)$",
        err,
        re.MULTILINE,
    ), err
    [run] = store.read_flow_runs()
    assert run.state is not None and run.state.name == "Failed"
    [task_run] = store.read_task_runs(run.id)
    assert task_run.state is not None and task_run.state.name == "Failed"


def test_failure_state_of_a_flow_keeps_the_exception() -> None:
    @flow
    def pipeline() -> None:
        raise KeyError("missing")

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, KeyError)


def test_task_outside_a_flow_is_a_plain_call_with_retries(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[int] = []

    @task(retries=2)
    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return x + 1

    assert flaky(1) == 2
    assert calls == [1, 1, 1]
    assert store.read_flow_runs() == []
    assert "Task run 'flaky' - Retrying in 0.0 seconds..." in capsys.readouterr().err


def test_task_called_with_wrong_arguments_raises_type_error() -> None:
    @task
    def one(x: int) -> int:
        return x

    @flow
    def pipeline() -> int:
        return one(1, 2)  # type: ignore[call-overload,no-any-return]

    with pytest.raises(TypeError, match="Task 'one'"):
        pipeline()


def test_flow_returning_a_state_sets_its_final_state() -> None:
    @flow
    def pipeline() -> State:
        return Cancelled("stopped on purpose")

    state = pipeline(return_state=True)
    assert state.is_cancelled() and state.message == "stopped on purpose"


def test_flow_returning_a_state_that_is_not_final_fails() -> None:
    @flow
    def pipeline() -> State:
        return Pending("not yet")

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert state.message == "The flow returned Pending('not yet'), which is not a final state"


def test_flow_returning_a_future_returns_its_result() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def pipeline() -> object:
        return double.submit(21)

    assert pipeline() == 42


def test_with_options_keeps_hooks_added_by_decorator_methods() -> None:
    seen: list[str] = []

    @task
    def work() -> None:
        raise ValueError("x")

    @work.on_failure
    def remember(task: object, task_run: object, state: State) -> None:
        seen.append(state.name)

    copy = work.with_options(name="copy")

    @flow
    def pipeline() -> None:
        work(return_state=True)
        copy(return_state=True)

    pipeline()
    assert seen == ["Failed", "Failed"]
