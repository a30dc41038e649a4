"""The ``RunStore`` contract, written once and run on every store: embedded on SQLite,
embedded on PostgreSQL, and the HTTP store against a real ``riverrun server start``.

Runs are made through the public API (``@flow``, ``@task``, ``tags``,
``get_run_logger``) and read back through the store's read methods.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import riverrun
from riverrun import flow, get_run_logger, task
from riverrun.exceptions import ObjectNotFoundError
from riverrun.settings import get_settings
from riverrun.store import RunStore, close_stores, get_store
from riverrun.store.embedded import EmbeddedStore
from riverrun.store.http import HttpStore
from riverrun.store.protocol import CacheEntry, FlowRun
from riverrun.testing import riverrun_test_harness
from tests.postgres import BACKENDS, empty_database

# (database_url, api_url): exactly one is set.
Target = tuple[str | None, str | None]


@pytest.fixture(params=[*BACKENDS, pytest.param("http", id="http")])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """Where this test's runs go: an empty database, or an empty server's API."""
    if request.param == "http":
        api_url: str = request.getfixturevalue("empty_api_server")
        yield None, api_url
        return
    with empty_database(request.param, tmp_path) as url:
        yield url, None


@pytest.fixture
def run_store(target: Target, tmp_path: Path) -> Iterator[RunStore]:
    """The store on this test's backend; runs made in the test are recorded in it."""
    database_url, api_url = target
    with riverrun_test_harness(
        tmp_path / "contract", database_url=database_url, api_url=api_url
    ) as store:
        yield store


@task
def add(x: int) -> int:
    return x + 1


def only_run(store: RunStore, flow_name: str) -> FlowRun:
    runs = store.read_flow_runs(flow_name=flow_name)
    assert len(runs) == 1, runs
    return runs[0]


def state_names(store: RunStore, run_id: str) -> list[str]:
    return [record.name for record in store.read_states(run_id)]


def test_flow_with_tasks_records_runs_and_ordered_state_history(run_store: RunStore) -> None:
    @flow
    def numbers(n: int) -> list[int]:
        return [add(i) for i in range(n)]

    before = datetime.now(UTC)
    assert numbers(5) == [1, 2, 3, 4, 5]
    after = datetime.now(UTC)

    run = only_run(run_store, "numbers")
    assert run.state is not None and run.state.is_completed()
    assert run.run_count == 1
    assert run.created is not None and before <= run.created <= after
    assert run.start_time is not None and run.end_time is not None
    assert run.created <= run.start_time <= run.end_time <= after

    task_runs = run_store.read_task_runs(run.id)
    assert [t.task_name for t in task_runs] == ["add"] * 5
    assert [t.dynamic_key for t in task_runs] == [0, 1, 2, 3, 4]
    assert {t.flow_run_id for t in task_runs} == {run.id}
    for task_run in task_runs:
        assert task_run.state is not None and task_run.state.is_completed()
        assert task_run.start_time is not None and task_run.end_time is not None
        assert run.start_time <= task_run.start_time <= task_run.end_time <= run.end_time

    for run_id in [run.id, *(t.id for t in task_runs)]:
        history = run_store.read_states(run_id)
        assert [(r.type, r.name) for r in history] == [
            ("PENDING", "Pending"),
            ("RUNNING", "Running"),
            ("COMPLETED", "Completed"),
        ], f"state history of run {run_id}"
        stamps = [record.timestamp for record in history]
        assert all(stamp.tzinfo is not None for stamp in stamps)
        assert stamps == sorted(stamps)
        assert before <= stamps[0] and stamps[-1] <= after


def test_parameters_are_stored_json_safe(run_store: RunStore) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque 7>"

    @flow
    def takes_anything(
        n: int, when: datetime, items: tuple[int, ...], thing: Any, nested: dict[str, Any]
    ) -> None:
        pass

    thing = object()
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    takes_anything(3, when, (1, 2), thing, {"o": Opaque(), "f": float("nan"), "l": [None]})

    parameters = only_run(run_store, "takes-anything").parameters
    assert parameters == {
        "n": 3,
        "when": when.isoformat(),
        "items": [1, 2],
        "thing": repr(thing),
        "nested": {"o": "<Opaque 7>", "f": "nan", "l": [None]},
    }
    json.dumps(parameters)


def test_tags_from_the_decorator_and_the_tags_block(run_store: RunStore) -> None:
    @task(tags=["t"])
    def tagged() -> None:
        pass

    @flow(tags=["nightly"])
    def with_tags() -> None:
        tagged()

    with riverrun.tags("a", "b"):
        with_tags()
    with_tags()

    second, first = run_store.read_flow_runs(flow_name="with-tags")  # newest first
    assert set(first.tags) == {"a", "b", "nightly"}
    assert second.tags == ["nightly"]
    [task_run] = run_store.read_task_runs(first.id)
    assert {"a", "b", "t"} <= set(task_run.tags)
    [task_run] = run_store.read_task_runs(second.id)
    assert "t" in task_run.tags and "a" not in task_run.tags


def test_logs_are_recorded_with_levels_and_runs(run_store: RunStore) -> None:
    @task
    def noisy() -> None:
        get_run_logger().warning("task says careful")

    @flow
    def chatty() -> None:
        logger = get_run_logger()
        logger.info("flow says hello")
        noisy()
        logger.error("flow says oops")

    chatty()

    run = only_run(run_store, "chatty")
    [task_run] = run_store.read_task_runs(run.id)
    entries = run_store.read_logs(run.id)
    by_message = {entry.message: entry for entry in entries}
    assert by_message["flow says hello"].level == 20
    assert by_message["flow says hello"].task_run_id is None
    assert by_message["task says careful"].level == 30
    assert by_message["task says careful"].task_run_id == task_run.id
    assert by_message["flow says oops"].level == 40
    assert all(entry.flow_run_id == run.id for entry in entries)
    ours = [e.message for e in entries if e.message.startswith(("flow says", "task says"))]
    assert ours == ["flow says hello", "task says careful", "flow says oops"]
    stamps = [entry.timestamp for entry in entries]
    assert all(stamp.tzinfo is not None for stamp in stamps) and stamps == sorted(stamps)


def test_a_failing_flow_is_recorded_failed_with_its_message(run_store: RunStore) -> None:
    @flow
    def explodes() -> None:
        add(1)
        raise ValueError("boom at step 2")

    with pytest.raises(ValueError, match="boom at step 2"):
        explodes()

    run = only_run(run_store, "explodes")
    assert run.state is not None and run.state.is_failed()
    assert run.state.message is not None and "boom at step 2" in run.state.message
    last = run_store.read_states(run.id)[-1]
    assert (last.type, last.name) == ("FAILED", "Failed")
    assert last.message == run.state.message
    [task_run] = run_store.read_task_runs(run.id)
    assert task_run.state is not None and task_run.state.is_completed()
    assert any(entry.level >= 40 for entry in run_store.read_logs(run.id))


def test_a_subflow_is_linked_both_ways_to_its_parent(run_store: RunStore) -> None:
    @flow
    def child(x: int) -> int:
        return add(x)

    @flow
    def parent() -> int:
        return child(1) + add(10)

    assert parent() == 13

    parent_run = only_run(run_store, "parent")
    child_run = only_run(run_store, "child")
    assert child_run.parent_flow_run_id == parent_run.id
    assert parent_run.parent_flow_run_id is None and parent_run.parent_task_run_id is None

    parent_tasks = run_store.read_task_runs(parent_run.id)
    [mirror] = [t for t in parent_tasks if t.subflow_run_id is not None]
    assert mirror.subflow_run_id == child_run.id
    assert child_run.parent_task_run_id == mirror.id
    assert mirror.state is not None and mirror.state.is_completed()
    assert sorted(t.task_name for t in parent_tasks) == ["add", "child"]

    [child_task] = run_store.read_task_runs(child_run.id)
    assert child_task.task_name == "add" and child_task.flow_run_id == child_run.id
    assert child_run.state is not None and child_run.state.is_completed()


def test_read_flow_runs_newest_first_with_limit_and_filters(run_store: RunStore) -> None:
    @flow
    def alpha() -> None:
        pass

    @flow
    def beta() -> None:
        raise RuntimeError("beta fails")

    @flow
    def gamma() -> None:
        pass

    alpha()
    with pytest.raises(RuntimeError):
        beta()
    gamma()
    alpha()

    runs = run_store.read_flow_runs()
    assert [run.flow_name for run in runs] == ["alpha", "gamma", "beta", "alpha"]
    created = [run.created for run in runs if run.created is not None]
    assert len(created) == 4 and created == sorted(created, reverse=True)

    assert [run.id for run in run_store.read_flow_runs(limit=2)] == [runs[0].id, runs[1].id]
    assert [run.flow_name for run in run_store.read_flow_runs(state_names=["Failed"])] == ["beta"]
    completed = run_store.read_flow_runs(state_names=["COMPLETED"])
    assert [run.id for run in completed] == [runs[0].id, runs[1].id, runs[3].id]
    alphas = run_store.read_flow_runs(flow_name="alpha")
    assert [run.id for run in alphas] == [runs[0].id, runs[3].id]
    assert run_store.read_flow_runs(flow_name="alpha", limit=1)[0].id == runs[0].id
    assert run_store.read_flow_runs(flow_name="nobody") == []


def test_read_flow_run_by_id_and_prefix_or_not_found(run_store: RunStore) -> None:
    @flow
    def lonely() -> int:
        return 1

    lonely()
    run = only_run(run_store, "lonely")

    by_id = run_store.read_flow_run(run.id)
    assert (by_id.id, by_id.name, by_id.created) == (run.id, run.name, run.created)
    assert by_id.state is not None and by_id.state.is_completed()
    assert run_store.read_flow_run(run.id[:8]).id == run.id
    for unknown in ["00000000-0000-0000-0000-000000000000", "not-an-id", run.id[:3], "%"]:
        with pytest.raises(ObjectNotFoundError) as raised:
            run_store.read_flow_run(unknown)
        assert raised.value.object_id == unknown


def test_cache_entries_round_trip(run_store: RunStore) -> None:
    created = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    entry = CacheEntry(
        key="add-1",
        location="results/add-1",
        expiration=created + timedelta(hours=1),
        created=created,
    )
    forever = CacheEntry(key="forever", location="results/f", expiration=None, created=created)

    assert run_store.read_cache_entry("add-1") is None
    run_store.write_cache_entry(entry)
    run_store.write_cache_entry(forever)
    assert run_store.read_cache_entry("add-1") == entry
    assert run_store.read_cache_entry("forever") == forever

    replaced = CacheEntry(
        key="add-1", location="results/add-1-v2", expiration=None, created=created + timedelta(1)
    )
    run_store.write_cache_entry(replaced)
    assert run_store.read_cache_entry("add-1") == replaced

    # Synchronous writes: visible from a new store the moment the call returns.
    close_stores()
    assert get_store().read_cache_entry("add-1") == replaced


def test_cache_entry_datetimes_keep_their_instant_in_any_timezone(run_store: RunStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 6, 1, 12, 0, tzinfo=plus_two)
    entry = CacheEntry(
        key="tz", location="results/tz", expiration=created + timedelta(minutes=5), created=created
    )
    run_store.write_cache_entry(entry)
    read = run_store.read_cache_entry("tz")
    assert read is not None
    assert read.created == created and read.expiration == entry.expiration, (
        f"wrote {entry.created.isoformat()}, read back {read.created.isoformat()}"
    )


def test_everything_is_durable_when_the_flow_call_returns(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the flow-end flush can have written the task runs, states and logs.
    monkeypatch.setenv("RIVERRUN_FLUSH_INTERVAL", "60")

    @task
    def logged(x: int) -> int:
        get_run_logger().info("task %d", x)
        return x

    @flow
    def durable() -> int:
        get_run_logger().warning("flow body ran")
        return sum(logged(i) for i in range(20))

    database_url, api_url = target
    with riverrun_test_harness(tmp_path / "durable", database_url=database_url, api_url=api_url):
        assert durable() == 190

        def check(store: RunStore) -> None:
            run = only_run(store, "durable")
            assert run.state is not None and run.state.is_completed()
            task_runs = store.read_task_runs(run.id)
            assert len(task_runs) == 20
            assert all(t.state is not None and t.state.is_completed() for t in task_runs)
            for run_id in [run.id, *(t.id for t in task_runs)]:
                assert state_names(store, run_id)[-2:] == ["Running", "Completed"]
            messages = [entry.message for entry in store.read_logs(run.id)]
            assert "flow body ran" in messages
            assert {f"task {i}" for i in range(20)} <= set(messages)

        # A second store on the same URL has its own connections and an empty queue.
        fresh: EmbeddedStore | HttpStore = (
            HttpStore(get_settings()) if api_url else EmbeddedStore(get_settings())
        )
        try:
            check(fresh)
        finally:
            fresh.close()
        close_stores()
        check(get_store())


def test_a_failed_run_resumes_once_and_reuses_persisted_results(run_store: RunStore) -> None:
    from riverrun import resume_flow_run
    from riverrun.states import State, StateType

    broken = [True]
    calls: list[str] = []

    @task
    def first() -> int:
        calls.append("first")
        return 1

    @task
    def second(x: int) -> int:
        calls.append("second")
        if broken[0]:
            raise RuntimeError("second broke")
        return x + 1

    @flow(persist_result=True)
    def resumable() -> int:
        return second(first())

    assert resumable(return_state=True).is_failed()
    run = only_run(run_store, "resumable")
    first_run = run_store.read_task_runs(run.id)[0]
    assert first_run.task_key is not None and first_run.task_key.endswith("first")
    assert first_run.result is not None and first_run.cache_key is None
    assert run.entrypoint is not None and run.entrypoint.endswith(":" + resumable.fn.__qualname__)

    broken[0] = False
    assert resume_flow_run(run.id, flow=resumable).result() == 2
    assert calls == ["first", "second", "second"]
    resumed = run_store.read_flow_run(run.id)
    assert resumed.state is not None and resumed.state.is_completed()
    waiting = State(StateType.SCHEDULED, "AwaitingRetry")
    assert run_store.restart_flow_run(resumed, waiting) is False  # completed: not moved


def test_cache_entries_are_deleted_by_task_and_key(run_store: RunStore) -> None:
    now = datetime.now(UTC)
    for key, task_name in (("k1", "a"), ("k2", "a"), ("k3", "b")):
        run_store.write_cache_entry(CacheEntry(key, "loc-" + key, None, now, task_name))
    assert [e.key for e in run_store.delete_cache_entries(task_name="a", key="k3")] == []
    assert sorted(e.key for e in run_store.delete_cache_entries(task_name="a")) == ["k1", "k2"]
    assert run_store.read_cache_entry("k1") is None
    assert [e.task_name for e in run_store.delete_cache_entries(key="k3")] == ["b"]
    assert run_store.delete_cache_entries() == []
