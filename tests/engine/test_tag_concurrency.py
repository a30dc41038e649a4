"""Task runs tagged with a limit's name hold one slot of it for their whole run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from riverrun import flow, tags, task
from riverrun.context import task_run_context
from riverrun.settings import get_settings
from riverrun.store import RunStore
from riverrun.store.embedded import EmbeddedStore
from riverrun.task_runners.process import ProcessPoolTaskRunner
from tests.concurrency.holder import count
from tests.engine.conftest import Mode


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    path = tmp_path / "counter"
    path.write_text("0 0")
    return path


def highest(counter: Path) -> int:
    current, top = (int(part) for part in counter.read_text().split())
    assert current == 0
    return top


def test_tagged_task_runs_take_slots(store: RunStore, counter: Path, mode: Mode) -> None:
    store.create_concurrency_limit("db", 2)

    @mode.task(tags=["db"])
    def query(i: int) -> int:
        count(counter, 1)
        time.sleep(0.02)
        count(counter, -1)
        return i

    @mode.flow()
    def queries() -> list[int]:
        futures = [query.submit(i) for i in range(8)]
        return [future.result() for future in futures]

    assert mode.run(queries) == list(range(8))
    assert highest(counter) == 2
    assert store.read_concurrency_limit("db").leases == []


def test_tags_blocks_count_and_the_lease_names_the_task_run(store: RunStore, counter: Path) -> None:
    store.create_concurrency_limit("db", 1)
    holders: list[tuple[str | None, str]] = []

    @task
    def query() -> None:
        count(counter, 1)
        [lease] = store.read_concurrency_limit("db").leases
        context = task_run_context.get()
        assert context is not None
        holders.append((lease.holder.task_run_id, context.task_run.id))
        time.sleep(0.01)
        count(counter, -1)

    @flow
    def queries() -> None:
        with tags("db"):
            futures = [query.submit() for _ in range(4)]
        for future in futures:
            future.result()

    queries()
    assert highest(counter) == 1
    assert len(holders) == 4 and all(mine == theirs for mine, theirs in holders)


def test_slots_are_released_after_failures_and_timeouts(store: RunStore) -> None:
    store.create_concurrency_limit("db", 1)
    attempts: list[int] = []

    @task(tags=["db"], retries=2, retry_delay_seconds=0)
    def flaky() -> None:
        attempts.append(len(store.read_concurrency_limit("db").leases))
        raise ValueError("down")

    @task(tags=["db"], timeout_seconds=0.2)
    def slow() -> None:
        time.sleep(2)

    @flow
    def broken() -> tuple[str, str]:
        return (
            flaky(return_state=True).name,
            slow(return_state=True).name,
        )

    assert broken() == ("Failed", "TimedOut")
    assert attempts == [1, 1, 1]  # one slot, held across the retries
    assert store.read_concurrency_limit("db").leases == []


def test_runs_tagged_with_other_names_take_no_slot(store: RunStore) -> None:
    store.create_concurrency_limit("db", 1)

    @task(tags=["other"])
    def free() -> int:
        return len(store.read_concurrency_limit("db").leases)

    @flow
    def pipeline() -> int:
        return free()

    assert pipeline() == 0


def test_tags_without_a_limit_cost_no_database_round_trip_per_task(store: RunStore) -> None:
    assert isinstance(store, EmbeddedStore)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "concurrency" in statement:
            statements.append(statement)

    event.listen(store._engine, "before_cursor_execute", seen)
    try:

        @task(tags=["db", "nightly"])
        def tagged(i: int) -> int:
            return i

        @flow
        def many() -> int:
            return sum(tagged(i) for i in range(200))

        assert many() == sum(range(200))
    finally:
        event.remove(store._engine, "before_cursor_execute", seen)
    assert len(statements) <= 1, statements  # the cached name set, read at most once


def test_a_limit_created_elsewhere_applies_once_the_name_cache_expires(
    store: RunStore, tmp_path: Path
) -> None:
    @task(tags=["late"])
    def held() -> int:
        return len(store.read_concurrency_limit("late").leases)

    @flow
    def pipeline() -> int:
        return held()

    assert store.concurrency_limit_names() == frozenset()
    other = EmbeddedStore(get_settings())
    try:
        other.create_concurrency_limit("late", 1)
    finally:
        other.close()
    time.sleep(2.1)  # the name cache's lifetime
    assert pipeline() == 1


@pytest.mark.slow
def test_tagged_runs_in_a_process_pool_share_the_cap(store: RunStore, counter: Path) -> None:
    store.create_concurrency_limit("db", 1)

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=3))
    def pooled(path: str) -> list[int]:
        futures = [pooled_query.submit(path, i) for i in range(6)]
        return [future.result() for future in futures]

    assert pooled(str(counter)) == list(range(6))
    assert highest(counter) == 1
    assert store.read_concurrency_limit("db").leases == []


@task(tags=["db"])
def pooled_query(path: str, i: int) -> int:
    count(Path(path), 1)
    time.sleep(0.05)
    count(Path(path), -1)
    return i
