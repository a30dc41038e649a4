"""The embedded store on a SQLite file records through ``sqlite3``, never SQLAlchemy: the
rows are the ones SQLAlchemy writes and reads back, a flow's process and its writer
process import neither SQLAlchemy nor Alembic, and an older database is still upgraded."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, select

from riverrun.cli.main import main
from riverrun.db import repository
from riverrun.db.engine import HEAD_REVISION, create_db_engine, current_revision, migrate
from riverrun.db.tables import metadata, task_runs
from riverrun.exceptions import StoreUnavailableError
from riverrun.settings import temporary_settings
from riverrun.states import Completed, Running
from riverrun.store import close_stores
from riverrun.store.embedded import EmbeddedStore
from riverrun.store.protocol import CacheEntry, FlowRun, LogEntry, TaskRun
from riverrun.testing import riverrun_test_harness
from tests.db.test_migrations import alembic_config

# Not UTC, with microseconds: the text must hold the UTC instant to the microsecond.
EAST = timezone(timedelta(hours=5, minutes=30))
T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=EAST)


def _records() -> tuple[FlowRun, TaskRun, LogEntry, CacheEntry]:
    flow_run = FlowRun(
        id="f" * 8 + "-0000-4000-8000-000000000001",
        name="brave-otter",
        flow_name="etl",
        parameters={"n": 3, "names": ["ä", "b"], "nested": {"x": None}},
        tags=["nightly", "ö"],
        parent_flow_run_id="p" * 36,
        parent_task_run_id="q" * 36,
        state=Running(),
        run_count=1,
        created=T0,
        start_time=T0 + timedelta(seconds=1),
        hostname=socket.gethostname(),
        pid=os.getpid(),
        heartbeat=datetime.now(EAST),  # fresh: the CLI sees no crash
        entrypoint="flows.py:etl",
        resume_parameters='{"n": 3}',
    )
    task_run = TaskRun(
        id="t" * 8 + "-0000-4000-8000-000000000002",
        name="load-0",
        task_name="load",
        flow_run_id=flow_run.id,
        dynamic_key=7,
        tags=["io"],
        state=Running(),
        run_count=1,
        created=T0 + timedelta(seconds=3),
        start_time=T0 + timedelta(seconds=3),
        cache_key="key-1",
        upstream_task_run_ids=["u" * 36],
        subflow_run_id=None,
        task_key="flows.load",
        result=None,
    )
    log = LogEntry(
        flow_run_id=flow_run.id,
        task_run_id=task_run.id,
        level=20,
        logger="riverrun.task_runs",
        message="loaded 3 rows — ok",
        timestamp=T0 + timedelta(seconds=4),
    )
    cache = CacheEntry(
        key="key-1",
        location="/results/key-1",
        expiration=T0 + timedelta(days=1),
        created=T0 + timedelta(seconds=5),
        task_name="load",
    )
    return flow_run, task_run, log, cache


def _fields(record: object) -> list[str]:
    return [field.name for field in dataclasses.fields(record)]  # type: ignore[arg-type]


def _raw_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    connection = sqlite3.connect(path)
    try:
        return {
            table: sorted(connection.execute(f'SELECT * FROM "{table}"'), key=repr)
            for table in metadata.tables
        }
    finally:
        connection.close()


def test_rows_written_through_sqlite3_are_what_sqlalchemy_reads_and_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow_run, task_run, log, cache = _records()
    database = tmp_path / "runs.db"
    url = f"sqlite:///{database}"
    with riverrun_test_harness(tmp_path / "home", database_url=url) as store:
        assert isinstance(store, EmbeddedStore)
        store.create_flow_run(flow_run)
        store.record_task_run(task_run)
        task_run.end_time = T0 + timedelta(seconds=6)
        task_run.result = "result-ref"
        store.set_state(task_run, Completed(message="done"))
        store.record_log(log)
        store.write_cache_entry(cache)
        store.flush()

        # Read back through SQLAlchemy's typed reads (the listing, a Core select) and
        # the driver-level ones: every field, aware datetimes included.
        [listed_run] = store.read_flow_runs()
        engine = create_db_engine(url)
        try:
            with engine.connect() as connection:
                [core_task] = [
                    repository._task_run(row) for row in connection.execute(select(task_runs))
                ]
        finally:
            engine.dispose()
        for read in (listed_run, store.read_flow_run(flow_run.id)):
            for name in _fields(flow_run):
                if name != "state":
                    assert getattr(read, name) == getattr(flow_run, name), name
            assert read.state is not None and read.state.name == "Running"
            assert read.created is not None and read.created.tzinfo is UTC
        for read_task in (core_task, *store.read_task_runs(flow_run.id)):
            for name in _fields(task_run):
                if name != "state":
                    assert getattr(read_task, name) == getattr(task_run, name), name
            assert read_task.state is not None and read_task.state.name == "Completed"
            assert read_task.state.message == "done"
            assert read_task.end_time is not None and read_task.end_time.tzinfo is UTC
        assert [(s.name, s.timestamp.tzinfo) for s in store.read_states(task_run.id)] == [
            ("Running", UTC),
            ("Completed", UTC),
        ]
        assert store.read_logs(flow_run.id) == [log]
        assert store.read_cache_entry(cache.key) == cache

        assert main(["flow-run", "ls"]) == 0
        listed = capsys.readouterr().out
        assert "brave-otter" in listed and "Running" in listed
        assert "2026-03-03 23:36:08" in listed  # the UTC start time

    # SQLAlchemy writing back what it read gives the same bytes: same text for
    # timestamps and JSON, same NULLs.
    copy = tmp_path / "copy.db"
    source = create_db_engine(url)
    target = create_db_engine(f"sqlite:///{copy}")
    try:
        migrate(target)
        with source.connect() as reading, target.begin() as writing:
            for table in metadata.sorted_tables:
                rows = [row._asdict() for row in reading.execute(select(table))]
                if rows:
                    writing.execute(insert(table), rows)
    finally:
        source.dispose()
        target.dispose()
    written, rewritten = _raw_rows(database), _raw_rows(copy)
    assert written == rewritten
    assert {table for table, rows in written.items() if rows} == {
        "flow_runs",
        "task_runs",
        "states",
        "logs",
        "cache_entries",
    }


_HELLO = textwrap.dedent(
    """
    import json
    import sys
    import time

    from riverrun import flow, get_run_logger, resume_flow_run, task
    from riverrun.context import flow_run_context
    from riverrun.store import close_stores, get_store
    from riverrun.tasks import task_input_hash


    @task(cache_key_fn=task_input_hash, tags=["io"])  # tags: limit names are read
    def greet(name: str) -> str:
        get_run_logger().info("hello %s", name)
        return f"hello {name}"


    @flow
    def hello() -> str:
        return greet("world")


    assert hello() == "hello world"
    store = get_store()
    writer = store._writer
    assert writer is not None, "no writer process was started"
    deadline = time.monotonic() + 60
    while not writer.ready and time.monotonic() < deadline:
        writer.poll()
        time.sleep(0.01)
    assert writer.ready
    assert hello() == "hello world"  # a cache hit, recorded through the writer

    broken = [True]
    flaky_ids = []


    @task
    def step() -> int:
        if broken[0]:
            raise RuntimeError("broken")
        return 1


    @flow(persist_result=True)
    def flaky() -> int:
        flaky_ids.append(flow_run_context.get().flow_run.id)
        return step()


    assert flaky(return_state=True).is_failed()
    broken[0] = False
    assert resume_flow_run(flaky_ids[0], flow=flaky).result() == 1
    close_stores()
    print(json.dumps(sorted(sys.modules)))
    """
)


def test_a_flow_and_its_writer_process_import_neither_sqlalchemy_nor_alembic(
    tmp_path: Path,
) -> None:
    script = tmp_path / "hello.py"
    script.write_text(_HELLO)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    # Every process, the writer too (it shares this stderr), reports its imports.
    env.update(
        RIVERRUN_HOME=str(home), RIVERRUN_STORE_WRITER="process", PYTHONPROFILEIMPORTTIME="1"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert [m for m in loaded if m.split(".")[0] in ("sqlalchemy", "alembic")] == []
    imports = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    modules = [line.rpartition("|")[2].strip() for line in imports]
    # Two processes' imports are in the report (both load the writer's module: the flow's
    # for the protocol's constants), but only the flow's loaded the store: the writer
    # imports only what committing needs (see tests/db/test_writer_child.py).
    assert modules.count("riverrun.db.writer_child") == 2
    assert modules.count("riverrun.store.embedded") == 1
    heavy = [line for line in imports if "sqlalchemy" in line or "alembic" in line]
    assert heavy == []

    with riverrun_test_harness(home) as store:
        [resumed] = store.read_flow_runs(flow_name="flaky")
        assert resumed.state is not None and resumed.state.is_completed()
        assert resumed.run_count == 2
        runs = store.read_flow_runs(flow_name="hello")
        assert [run.state.name if run.state else None for run in runs] == ["Completed"] * 2
        for run in runs:
            [task_run] = store.read_task_runs(run.id)
            assert task_run.state is not None
            assert [s.name for s in store.read_states(run.id)][-1] == "Completed"
            assert store.read_states(task_run.id)[-1].name == task_run.state.name
        names = sorted(
            task_run.state.name
            for run in runs
            for task_run in store.read_task_runs(run.id)
            if task_run.state is not None
        )
        assert names == ["Cached", "Completed"]
        messages = [log.message for run in runs for log in store.read_logs(run.id)]
        assert "hello world" in messages
        [entry] = store.delete_cache_entries(task_name="greet")
        assert entry.created.tzinfo is UTC


def test_a_database_at_an_older_revision_is_upgraded_on_first_run(tmp_path: Path) -> None:
    from riverrun import flow

    database = tmp_path / "old.db"
    url = f"sqlite:///{database}"
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0004")
        assert current_revision(engine) == "0004"
    finally:
        engine.dispose()

    @flow
    def after_upgrade() -> int:
        return 1

    with riverrun_test_harness(tmp_path / "home", database_url=url) as store:
        assert after_upgrade() == 1
        [run] = store.read_flow_runs()
        assert run.flow_name == "after-upgrade"
    engine = create_db_engine(url)
    try:
        assert current_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()


def test_a_sqlite_file_that_cannot_be_opened_is_store_unavailable(tmp_path: Path) -> None:
    from riverrun import flow

    @flow
    def pipeline() -> int:
        return 1

    # A folder where the database file should be.
    url = f"sqlite:///{tmp_path}"
    with temporary_settings(database_url=url), pytest.raises(StoreUnavailableError) as caught:
        pipeline()
    close_stores()
    assert "unable to open database file" in str(caught.value)
    assert str(tmp_path) in str(caught.value)


def test_a_database_locked_past_the_timeout_keeps_the_events_for_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import riverrun.db.sqlite

    monkeypatch.setattr(riverrun.db.sqlite, "BUSY_TIMEOUT_MS", 50)
    database = tmp_path / "locked.db"
    url = f"sqlite:///{database}"
    _, _, log, _ = _records()
    with riverrun_test_harness(tmp_path / "home", database_url=url) as store:
        assert isinstance(store, EmbeddedStore)
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process writing, for too long
        try:
            store.record_log(log)
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                store.flush()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        store.flush()  # kept, and written once the lock is free
        rows = sqlite3.connect(database).execute("SELECT message FROM logs").fetchall()
        assert rows == [(log.message,)]
