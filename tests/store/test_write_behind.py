"""The write-behind queue: a refused event is dropped alone; ids ignore random.seed();
forked children record through their own connections."""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path

import pytest

from riverrun import flow, get_run_logger, task
from riverrun.settings import temporary_settings
from riverrun.store import RunStore, close_stores


def test_an_unstorable_log_line_is_stored_replaced_and_blocks_nothing(store: RunStore) -> None:
    undecodable = b"report-\xff.csv".decode("utf-8", "surrogateescape")

    @flow(log_prints=True)
    def lists_files() -> None:
        print(undecodable)

    @flow
    def later() -> int:
        return 1

    lists_files()
    later()
    runs = {run.flow_name: run for run in store.read_flow_runs()}
    assert set(runs) == {"lists-files", "later"}
    messages = [log.message for log in store.read_logs(runs["lists-files"].id)]
    assert "report-\ufffd.csv" in messages or "report-?.csv" in messages


def test_a_refused_event_is_dropped_and_the_rest_are_written(store: RunStore) -> None:
    @task(task_run_name="x" * 300)  # longer than the column: PostgreSQL refuses it
    def long_named() -> None:
        pass

    @task
    def fine() -> None:
        pass

    @flow
    def pipeline() -> None:
        long_named()
        fine()

    pipeline()
    [run] = store.read_flow_runs()
    assert run.state is not None and run.state.is_completed()
    names = {t.task_name for t in store.read_task_runs(run.id)}
    assert "fine" in names  # SQLite keeps the long name too; PostgreSQL drops that row alone


def test_user_seeding_random_neither_repeats_ids_nor_is_disturbed(store: RunStore) -> None:
    @task
    def noop() -> None:
        pass

    @flow
    def seeded() -> float:
        random.seed(0)
        noop()
        return random.random()

    first, second = seeded(), seeded()
    random.seed(0)
    assert first == second == random.random()
    runs = store.read_flow_runs()
    assert len(runs) == 2
    task_ids = {t.id for run in runs for t in store.read_task_runs(run.id)}
    assert len(task_ids) == 2


def _log_in_child(i: int) -> int:
    get_run_logger().info("child %d says hi", i)
    return i


def test_forked_workers_log_into_the_run(store: RunStore) -> None:
    @task
    def fan_out() -> list[int]:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            return pool.map(_log_in_child, range(2))

    @flow
    def pipeline() -> list[int]:
        get_run_logger().info("parent first")
        return fan_out()

    assert pipeline() == [0, 1]
    [run] = store.read_flow_runs()
    messages = {log.message for log in store.read_logs(run.id)}
    assert {"parent first", "child 0 says hi", "child 1 says hi"} <= messages


def test_an_unreachable_or_unsupported_database_is_a_clear_error() -> None:
    from riverrun.exceptions import StoreUnavailableError

    @flow
    def pipeline() -> int:
        return 1

    cases = {
        "postgresql://user:secret@127.0.0.1:1/x": "postgresql://user:***@127.0.0.1:1/x",
        "mysql://user@localhost/x": "unsupported database 'mysql'",
    }
    for url, expected in cases.items():
        with temporary_settings(database_url=url), pytest.raises(StoreUnavailableError) as caught:
            pipeline()
        close_stores()
        assert expected in str(caught.value)
        assert "secret" not in str(caught.value)


@pytest.mark.parametrize("mode", ["thread", "auto"])
def test_the_queue_stays_bounded_when_runs_outpace_the_database(tmp_path: Path, mode: str) -> None:
    """Past its high water mark the queue is written by the thread recording; while a
    writer process starts up (auto), the mark is higher, the events kept for it."""
    from datetime import UTC, datetime

    from riverrun.settings import get_settings
    from riverrun.states import Completed
    from riverrun.store import TaskRun, get_store
    from riverrun.store.embedded import _HIGH_WATER, _HIGH_WATER_STARTING, EmbeddedStore

    close_stores()
    with temporary_settings(home=str(tmp_path / mode), store_writer=mode):
        store = get_store(get_settings())
        assert isinstance(store, EmbeddedStore)
        longest = 0
        runs = [
            TaskRun(id=f"t-{i}", name=f"t-{i}", task_name="t", flow_run_id=None)
            for i in range(30_000)
        ]
        for run in runs:
            run.created = datetime.now(UTC)
            store.record_task_run(run)
            store.set_state(run, Completed())
            longest = max(longest, len(store._queue))
        assert longest <= (_HIGH_WATER if mode == "thread" else _HIGH_WATER_STARTING)
        store.flush()
        assert len(store._queue) == 0
        close_stores()


def test_sqlite_timestamps_are_written_as_sqlalchemy_reads_them() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from riverrun.db.statements import sqlite_timestamp as _sqlite_timestamp

    start = datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    moments = [start, start + timedelta(microseconds=1), start + timedelta(seconds=1)]
    moments.append(datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=UTC))
    moments.append(datetime(2026, 1, 2, 5, 4, 5, 7, tzinfo=timezone(timedelta(hours=2))))
    texts = [_sqlite_timestamp(moment) for moment in moments]
    assert texts == [
        "2026-12-31 23:59:59.999999",
        "2027-01-01 00:00:00.000000",
        "2027-01-01 00:00:00.999999",
        "2026-01-02 03:04:05.000000",
        "2026-01-02 03:04:05.000007",
    ]
    assert _sqlite_timestamp(None) is None
