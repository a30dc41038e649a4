"""Retries for tasks and flows: counts, delays, backoff, jitter, conditions, reuse."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from riverrun import flow, task
from riverrun.orchestration import retry_delay
from riverrun.store import RunStore
from riverrun.tasks import exponential_backoff
from tests.engine.conftest import Mode


def test_task_retries_until_it_succeeds(mode: Mode, store: RunStore) -> None:
    attempts: list[float] = []

    @mode.task(retries=3, retry_delay_seconds=0.1)
    def flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    @mode.flow()
    def pipeline() -> str:
        return str(flaky())

    assert mode.run(pipeline) == "ok"
    assert len(attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert all(0.09 <= gap < 0.5 for gap in gaps), gaps
    [run] = store.read_flow_runs()
    [task_run] = store.read_task_runs(run.id)
    assert task_run.run_count == 3
    names = [state.name for state in store.read_states(task_run.id)]
    assert names == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]


def test_task_gives_up_after_its_retries(mode: Mode) -> None:
    calls: list[int] = []

    @mode.task(retries=2)
    def always_fails() -> None:
        calls.append(1)
        raise ValueError("never")

    @mode.flow()
    def pipeline() -> None:
        always_fails()

    with pytest.raises(ValueError, match="never"):
        mode.run(pipeline)
    assert len(calls) == 3


def test_retry_delays_as_a_list_are_used_per_attempt(mode: Mode) -> None:
    stamps: list[float] = []

    @mode.task(retries=3, retry_delay_seconds=[0.05, 0.3, 0.05])
    def flaky() -> int:
        stamps.append(time.monotonic())
        if len(stamps) < 4:
            raise OSError("again")
        return len(stamps)

    @mode.flow()
    def pipeline() -> int:
        return int(flaky())

    assert mode.run(pipeline) == 4
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert 0.04 <= gaps[0] < 0.25
    assert 0.29 <= gaps[1] < 0.6
    assert 0.04 <= gaps[2] < 0.25


def test_exponential_backoff_doubles() -> None:
    assert exponential_backoff(backoff_factor=10)(3) == [10, 20, 40]
    with pytest.raises(ValueError, match="backoff_factor"):
        exponential_backoff(backoff_factor=-1)


def test_exponential_backoff_is_applied(mode: Mode) -> None:
    stamps: list[float] = []

    @mode.task(retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=0.1))
    def flaky() -> None:
        stamps.append(time.monotonic())
        if len(stamps) < 3:
            raise OSError("again")

    @mode.flow()
    def pipeline() -> None:
        flaky()

    mode.run(pipeline)
    first, second = (b - a for a, b in itertools.pairwise(stamps))
    assert 0.09 <= first < 0.35
    assert 0.19 <= second < 0.5


def test_jitter_spreads_the_delay() -> None:
    rng = random.Random(7)
    delays = {retry_delay(attempt=1, delays=1.0, jitter_factor=0.5, rng=rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(0.5 <= delay <= 1.5 for delay in delays)
    assert retry_delay(attempt=1, delays=1.0, jitter_factor=None) == 1.0
    assert retry_delay(attempt=5, delays=[1, 2], jitter_factor=None) == 2.0


def test_jitter_is_really_applied_to_runs(mode: Mode) -> None:
    stamps: list[float] = []

    @mode.task(retries=6, retry_delay_seconds=0.1, retry_jitter_factor=1.0)
    def flaky() -> None:
        stamps.append(time.monotonic())
        if len(stamps) < 7:
            raise OSError("again")

    @mode.flow()
    def pipeline() -> None:
        flaky()

    mode.run(pipeline)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap < 0.35 for gap in gaps)
    # Without jitter each gap would be ~0.1 s; with factor 1.0 they spread over 0-0.2 s.
    assert max(gaps) - min(gaps) > 0.02, gaps


def test_retry_condition_fn_decides(mode: Mode) -> None:
    calls: list[str] = []
    seen: list[tuple[str, str]] = []

    def only_connection_errors(task: object, task_run: object, state: object) -> bool:
        from riverrun.states import State

        assert isinstance(state, State)
        error = state.result(raise_on_failure=False)
        seen.append((type(error).__name__, state.name))
        return isinstance(error, ConnectionError)

    @mode.task(retries=5, retry_condition_fn=only_connection_errors)
    def flaky() -> None:
        calls.append("call")
        if len(calls) == 1:
            raise ConnectionError("transient")
        raise ValueError("permanent")

    @mode.flow()
    def pipeline() -> None:
        flaky()

    with pytest.raises(ValueError, match="permanent"):
        mode.run(pipeline)
    assert calls == ["call", "call"]
    assert seen == [("ConnectionError", "Failed"), ("ValueError", "Failed")]


def test_flow_retry_reruns_the_body_but_not_completed_tasks(mode: Mode, store: RunStore) -> None:
    runs: dict[str, int] = {"extract": 0, "load": 0, "body": 0}

    @mode.task()
    def extract() -> list[int]:
        runs["extract"] += 1
        return [1, 2, 3]

    @mode.task()
    def load(rows: list[int]) -> int:
        runs["load"] += 1
        if runs["load"] == 1:
            raise ConnectionError("warehouse down")
        return sum(rows)

    @mode.flow(retries=1)
    def pipeline() -> int:
        runs["body"] += 1
        return int(load(extract()))

    assert mode.run(pipeline) == 6
    assert runs == {"extract": 1, "load": 2, "body": 2}
    [run] = store.read_flow_runs()
    assert run.run_count == 2
    assert [s.name for s in store.read_states(run.id)] == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    task_names = sorted(t.task_name for t in store.read_task_runs(run.id))
    assert task_names == ["extract", "load", "load"]


def test_invalid_retry_options_are_rejected() -> None:
    from riverrun import task

    with pytest.raises(ValueError, match="retries must be >= 0"):
        task(retries=-1)(lambda: None)
    with pytest.raises(ValueError, match="retry_delay_seconds"):
        task(retries=1, retry_delay_seconds=-2)(lambda: None)
    with pytest.raises(ValueError, match="timeout_seconds"):
        task(timeout_seconds=0)(lambda: None)


def test_flow_retry_reruns_a_task_called_with_other_arguments() -> None:
    attempt = {"n": 0}

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(retries=1)
    def pipeline() -> int:
        attempt["n"] += 1
        value = double(attempt["n"])
        if attempt["n"] == 1:
            raise RuntimeError("first attempt fails")
        return value

    assert pipeline() == 4
