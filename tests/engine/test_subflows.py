"""Subflows: their own runs, linked to the parent run and the parent's task run."""

from __future__ import annotations

import pytest

from riverrun import flow, task
from riverrun.store import RunStore


def test_subflow_is_its_own_linked_run(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    @task
    def validate(data: list[int]) -> bool:
        return len(data) > 0

    @flow(name="transform")
    def transform_flow(data: list[int]) -> list[int]:
        if validate(data):
            return [x * 2 for x in data]
        return []

    @flow(name="main")
    def main_flow() -> list[int]:
        return transform_flow([1, 2, 3, 4, 5])

    assert main_flow() == [2, 4, 6, 8, 10]
    assert "Created subflow run '" in capsys.readouterr().err
    runs = {run.flow_name: run for run in store.read_flow_runs()}
    parent, child = runs["main"], runs["transform"]
    assert child.parent_flow_run_id == parent.id
    assert parent.parent_flow_run_id is None
    [link] = store.read_task_runs(parent.id)
    assert link.subflow_run_id == child.id
    assert child.parent_task_run_id == link.id
    assert link.state is not None and link.state.is_completed()
    assert child.parameters == {"data": [1, 2, 3, 4, 5]}
    assert [t.task_name for t in store.read_task_runs(child.id)] == ["validate"]


def test_failing_subflow_fails_parent(store: RunStore) -> None:
    @flow
    def child() -> None:
        raise ValueError("child broke")

    @flow
    def parent() -> None:
        child()

    with pytest.raises(ValueError, match="child broke"):
        parent()
    states = {run.flow_name: run.state for run in store.read_flow_runs()}
    assert all(state is not None and state.is_failed() for state in states.values())
    [parent_run] = [r for r in store.read_flow_runs() if r.flow_name == "parent"]
    [link] = store.read_task_runs(parent_run.id)
    assert link.state is not None and link.state.is_failed()


def test_completed_subflow_is_reused_when_the_parent_retries(store: RunStore) -> None:
    calls = {"child": 0, "parent": 0}

    @flow
    def child() -> int:
        calls["child"] += 1
        return 1

    @flow(retries=1)
    def parent() -> int:
        calls["parent"] += 1
        value = child()
        if calls["parent"] == 1:
            raise RuntimeError("after the subflow")
        return value

    assert parent() == 1
    assert calls == {"child": 1, "parent": 2}
