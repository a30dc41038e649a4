"""Resuming a failed flow run: completed steps with persisted results are not rerun."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from riverrun import flow, resume_flow_run, task
from riverrun.exceptions import ObjectNotFoundError, ResumeError
from riverrun.settings import get_settings
from riverrun.states import State, StateType
from riverrun.store import RunStore


def five_steps(calls: Counter[str], failing: set[str], **flow_options: Any) -> Any:
    def step(name: str) -> Any:
        @task(name=name)
        def run(value: int) -> int:
            calls[name] += 1
            if name in failing:
                raise RuntimeError(f"{name} broke")
            return value + 1

        return run

    steps = [step(f"step{i}") for i in range(1, 6)]

    @flow(**flow_options)
    def pipeline(start: int) -> int:
        value = start
        for run in steps:
            value = run(value)
        return value

    return pipeline


def names_and_states(store: RunStore, flow_run_id: str) -> list[tuple[str, str]]:
    return [(t.task_name, t.state.name) for t in store.read_task_runs(flow_run_id) if t.state]


def test_resume_after_a_failure_at_step_3_reruns_only_steps_3_to_5(store: RunStore) -> None:
    calls: Counter[str] = Counter()
    failing = {"step3"}
    pipeline = five_steps(calls, failing, persist_result=True)
    failed = pipeline(10, return_state=True)
    assert failed.is_failed()
    (run,) = store.read_flow_runs()
    assert calls == {"step1": 1, "step2": 1, "step3": 1}

    failing.clear()  # the cause is fixed
    state = resume_flow_run(run.id, flow=pipeline)

    assert state.is_completed() and state.result() == 15
    assert calls == {"step1": 1, "step2": 1, "step3": 2, "step4": 1, "step5": 1}
    resumed = store.read_flow_run(run.id)
    assert resumed.state is not None and resumed.state.name == "Completed"
    assert resumed.run_count == 2
    assert names_and_states(store, run.id) == [
        ("step1", "Completed"),
        ("step2", "Completed"),
        ("step3", "Failed"),
        ("step1", "Cached"),
        ("step2", "Cached"),
        ("step3", "Completed"),
        ("step4", "Completed"),
        ("step5", "Completed"),
    ]
    history = [(s.type, s.name) for s in store.read_states(run.id)]
    assert history == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("FAILED", "Failed"),
        ("SCHEDULED", "AwaitingRetry"),
        ("RUNNING", "Retrying"),
        ("COMPLETED", "Completed"),
    ]


def test_a_flow_retry_reuses_completed_steps_too(store: RunStore) -> None:
    calls: Counter[str] = Counter()
    failing = {"step3"}
    body = five_steps(calls, failing).fn

    def fails_once(start: int) -> int:
        try:
            return body(start)  # type: ignore[no-any-return]
        finally:
            failing.clear()  # the cause is gone by the retry

    assert flow(retries=1)(fails_once)(10) == 15
    assert calls == {"step1": 1, "step2": 1, "step3": 2, "step4": 1, "step5": 1}


def test_without_persisted_results_every_step_runs_again(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: Counter[str] = Counter()
    failing = {"step3"}
    pipeline = five_steps(calls, failing)
    pipeline(1, return_state=True)
    failing.clear()
    (run,) = store.read_flow_runs()
    assert resume_flow_run(run.id, flow=pipeline).is_completed()
    assert calls == {"step1": 2, "step2": 2, "step3": 2, "step4": 1, "step5": 1}
    err = capsys.readouterr().err
    assert "completed, but its result was not persisted" in err


def test_results_that_cannot_be_persisted_are_recomputed(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: Counter[str] = Counter()
    broken = [True]

    @task
    def make_generator() -> Any:
        calls["generator"] += 1
        return (n for n in range(3))  # generators cannot be pickled

    @task
    def plain() -> int:
        calls["plain"] += 1
        return 1

    @task
    def fail() -> None:
        if broken[0]:
            raise RuntimeError("boom")

    @flow(persist_result=True)
    def pipeline() -> int:
        total: int = sum(make_generator()) + plain()
        fail()
        return total

    assert pipeline(return_state=True).is_failed()
    broken[0] = False
    (run,) = store.read_flow_runs()
    assert resume_flow_run(run.id, flow=pipeline).result() == 4
    assert calls == {"generator": 2, "plain": 1}
    assert "could not be persisted" in capsys.readouterr().err


def test_changed_inputs_are_not_reused(store: RunStore) -> None:
    calls: Counter[str] = Counter()
    seed = [1]
    broken = [True]

    @task
    def source() -> int:
        return seed[0]

    @task
    def double(x: int) -> int:
        calls["double"] += 1
        return 2 * x

    @task
    def fail(x: int) -> int:
        if broken[0]:
            raise RuntimeError("boom")
        return x

    @flow(persist_result=True)
    def pipeline() -> int:
        return fail(double(source.with_options(persist_result=False)()))

    pipeline(return_state=True)
    seed[0], broken[0] = 5, False  # source gives another value on the resume
    (run,) = store.read_flow_runs()
    assert resume_flow_run(run.id, flow=pipeline).result() == 10
    assert calls["double"] == 2


def test_only_ended_uncompleted_top_level_runs_can_be_resumed(store: RunStore) -> None:
    @flow
    def fine() -> int:
        return 1

    fine()
    (run,) = store.read_flow_runs()
    with pytest.raises(ResumeError, match="is Completed; only Failed, Crashed or Cancelled"):
        resume_flow_run(run.id, flow=fine)
    with pytest.raises(ObjectNotFoundError):
        resume_flow_run("no-such-run", flow=fine)


def test_two_resumers_of_one_run_one_wins(store: RunStore) -> None:
    @flow
    def broken() -> None:
        raise RuntimeError("boom")

    broken(return_state=True)
    (run,) = store.read_flow_runs()
    waiting = State(StateType.SCHEDULED, "AwaitingRetry")
    assert store.restart_flow_run(store.read_flow_run(run.id), waiting) is True
    assert store.restart_flow_run(store.read_flow_run(run.id), waiting) is False
    with pytest.raises(ResumeError, match="only Failed, Crashed or Cancelled"):
        resume_flow_run(run.id, flow=broken)


_SCRIPT = """
import os
from riverrun import flow, task

def record(name):
    with open(os.environ["CALLS"], "a") as f:
        f.write(name + "\\n")

@task
def extract(n: int) -> list[int]:
    record("extract")
    return list(range(n))

@task
def transform(rows: list[int]) -> list[int]:
    record("transform")
    if os.environ.get("BREAK") == "transform":
        raise RuntimeError("transform broke")
    return [r * 2 for r in rows]

@task
def load(rows: list[int]) -> int:
    record("load")
    return sum(rows)

@flow(persist_result=True)
def etl(n: int = 4) -> int:
    return load(transform(extract(n)))

if __name__ == "__main__":
    print("result", etl(n=5))
"""


def test_cli_retry_resumes_a_script_run(tmp_path: Path, store: RunStore) -> None:
    script = tmp_path / "etl.py"
    script.write_text(_SCRIPT)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "RIVERRUN_HOME": str(get_settings().home), "CALLS": str(calls)}
    first = subprocess.run(
        [sys.executable, str(script)],
        env={**env, "BREAK": "transform"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.returncode != 0
    assert calls.read_text().split() == ["extract", "transform"]
    (run,) = store.read_flow_runs()
    assert run.entrypoint == f"{script}:etl"

    retry = subprocess.run(
        [sys.executable, "-m", "riverrun", "flow-run", "retry", run.id[:8]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path.parent,
    )
    assert retry.returncode == 0, retry.stderr
    assert calls.read_text().split() == ["extract", "transform", "transform", "load"]
    assert "result" not in retry.stdout  # the script's __main__ block did not run
    assert "Resuming flow run" in retry.stderr
    assert "Task run 'extract' - Finished in state Cached(" in retry.stderr
    resumed = store.read_flow_run(run.id)
    assert resumed.state is not None and resumed.state.is_completed()
    assert resumed.parameters == {"n": 5}

    again = subprocess.run(
        [sys.executable, "-m", "riverrun", "flow-run", "retry", run.id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1
    assert "is Completed; only Failed, Crashed or Cancelled" in again.stderr


def test_cli_retry_names_a_missing_file(tmp_path: Path, store: RunStore) -> None:
    script = tmp_path / "gone.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "RIVERRUN_HOME": str(get_settings().home), "CALLS": "/dev/null"}
    subprocess.run(
        [sys.executable, str(script)], env={**env, "BREAK": "transform"}, capture_output=True
    )
    script.unlink()
    (run,) = store.read_flow_runs()
    done = subprocess.run(
        [sys.executable, "-m", "riverrun", "flow-run", "retry", run.id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"The flow's file {script} no longer exists" in done.stderr


def test_resume_with_a_process_pool_reuses_in_the_flow_process(store: RunStore) -> None:
    from riverrun.task_runners import ProcessPoolTaskRunner
    from tests.engine.resume_tasks import pipeline_on_processes

    marker = get_settings().home / "break"
    marker.write_text("yes")
    assert pipeline_on_processes(str(marker), return_state=True).is_failed()
    marker.unlink()
    (run,) = store.read_flow_runs()
    assert resume_flow_run(run.id, flow=pipeline_on_processes).result() == [2, 4, 6]
    tasks = names_and_states(store, run.id)
    assert tasks.count(("double", "Cached")) == 3
    assert tasks.count(("check", "Completed")) == 1
    assert isinstance(pipeline_on_processes.task_runner, ProcessPoolTaskRunner)
