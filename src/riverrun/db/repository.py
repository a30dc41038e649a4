"""Queries written once for SQLite and PostgreSQL: SQLAlchemy Core off the run path, and
the run path's driver-level statements (``statements.py``) on a SQLAlchemy connection."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, or_, select

from riverrun.db import statements
from riverrun.db.engine import read_connection
from riverrun.db.statements import (
    Batch,
    flow_run_row,
    micros,
    state_row,
    state_values,
    task_run_values,
)
from riverrun.db.tables import cache_entries, flow_runs, logs, states
from riverrun.states import State
from riverrun.store.protocol import CacheEntry, FlowRun, LogEntry, StateRecord, TaskRun

__all__ = [
    "Batch",
    "EngineDatabase",
    "apply_batch",
    "connection_driver",
    "delete_cache_entries",
    "flow_run_row",
    "insert_flow_run",
    "log_entry",
    "micros",
    "restart_flow_run",
    "select_cache_entry",
    "select_flow_run",
    "select_flow_runs",
    "select_logs",
    "select_states",
    "select_task_runs",
    "state_row",
    "state_values",
    "task_run_values",
    "upsert_cache_entry",
]


class _ConnectionDriver:
    """A SQLAlchemy connection in a transaction, as ``statements.Driver``: the run
    path's statements go to its driver as they are (psycopg on PostgreSQL)."""

    __slots__ = ("_connection", "dialect")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        dialect = connection.dialect
        if dialect.name == "sqlite":
            self.dialect = statements.SQLITE
        elif dialect.driver == "psycopg":
            self.dialect = statements.POSTGRESQL
        else:  # another PostgreSQL driver taking "%s" (create_db_engine allows no other)
            self.dialect = statements.POSTGRESQL_JSON_TEXT

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> int:
        result = self._connection.exec_driver_sql(statement, [tuple(row) for row in rows])
        return int(result.rowcount)

    def query(self, statement: str, parameters: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return list(self._connection.exec_driver_sql(statement, tuple(parameters)).all())


def connection_driver(connection: Connection) -> statements.Driver:
    """``connection`` as the driver the statements of ``statements.py`` run on."""
    return _ConnectionDriver(connection)


class EngineDatabase:
    """A SQLAlchemy engine as ``statements.Database`` (the embedded store on
    PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def write(self) -> Iterator[statements.Driver]:
        with self.engine.begin() as connection:
            yield _ConnectionDriver(connection)

    @contextmanager
    def read(self) -> Iterator[statements.Driver]:
        with read_connection(self.engine) as connection:
            yield _ConnectionDriver(connection)


def insert_flow_run(connection: Connection, run: FlowRun) -> None:
    """Insert a new flow run and, if it has one, its first state."""
    statements.insert_flow_run(_ConnectionDriver(connection), run)


def apply_batch(connection: Connection, batch: Batch) -> None:
    """Write one flush's worth of rows: inserts first, then each run's latest columns."""
    statements.apply_batch(_ConnectionDriver(connection), batch)


def _flow_run(row: Row[Any]) -> FlowRun:
    return statements.flow_run_record(row._mapping)


def _task_run(row: Row[Any]) -> TaskRun:
    return statements.task_run_record(row._mapping)


def select_flow_runs(
    connection: Connection,
    *,
    limit: int | None = None,
    state_names: Sequence[str] | None = None,
    flow_name: str | None = None,
) -> list[FlowRun]:
    query = select(flow_runs).order_by(flow_runs.c.created.desc(), flow_runs.c.id)
    if state_names:
        wanted = {name.lower() for name in state_names}
        # Match a display name ("Retrying") or a type ("RUNNING"), case-insensitively.
        query = query.where(
            or_(
                func.lower(flow_runs.c.state_name).in_(wanted),
                func.lower(flow_runs.c.state_type).in_(wanted),
            )
        )
    if flow_name:
        query = query.where(flow_runs.c.flow_name == flow_name)
    if limit is not None:
        query = query.limit(limit)
    return [_flow_run(row) for row in connection.execute(query)]


def select_flow_run(connection: Connection, flow_run_id: str) -> FlowRun:
    return statements.select_flow_run(_ConnectionDriver(connection), flow_run_id)


def select_task_runs(connection: Connection, flow_run_id: str) -> list[TaskRun]:
    return statements.select_task_runs(_ConnectionDriver(connection), flow_run_id)


def select_states(connection: Connection, run_id: str) -> list[StateRecord]:
    query = select(states).where(states.c.run_id == run_id).order_by(states.c.id)
    return [
        StateRecord(
            run_id=row.run_id,
            type=row.type,
            name=row.name,
            message=row.message,
            timestamp=row.timestamp,
        )
        for row in connection.execute(query)
    ]


def log_entry(row: Row[Any]) -> LogEntry:
    """A row of ``logs`` as the record the store hands out."""
    return LogEntry(
        flow_run_id=row.flow_run_id,
        task_run_id=row.task_run_id,
        level=row.level,
        logger=row.logger,
        message=row.message,
        timestamp=row.timestamp,
    )


def select_logs(connection: Connection, flow_run_id: str) -> list[LogEntry]:
    query = select(logs).where(logs.c.flow_run_id == flow_run_id).order_by(logs.c.id)
    return [log_entry(row) for row in connection.execute(query)]


def _cache_entry(row: Row[Any]) -> CacheEntry:
    return CacheEntry(
        key=row.key,
        location=row.location,
        expiration=row.expiration,
        created=row.created,
        task_name=row.task_name,
    )


def select_cache_entry(connection: Connection, key: str) -> CacheEntry | None:
    return statements.select_cache_entry(_ConnectionDriver(connection), key)


def upsert_cache_entry(connection: Connection, entry: CacheEntry) -> None:
    statements.upsert_cache_entry(_ConnectionDriver(connection), entry)


def delete_cache_entries(
    connection: Connection, *, task_name: str | None = None, key: str | None = None
) -> list[CacheEntry]:
    """Delete the matching entries (all when no filter is given) and return them."""
    query = select(cache_entries)
    if task_name is not None:
        query = query.where(cache_entries.c.task_name == task_name)
    if key is not None:
        query = query.where(cache_entries.c.key == key)
    removed = [_cache_entry(row) for row in connection.execute(query)]
    keys = [entry.key for entry in removed]
    for start in range(0, len(keys), 500):
        connection.execute(
            delete(cache_entries).where(cache_entries.c.key.in_(keys[start : start + 500]))
        )
    return removed


def restart_flow_run(connection: Connection, run: FlowRun, state: State) -> bool:
    """Move ``run`` to ``state`` if it is still Failed, Crashed or Cancelled (one
    conditional UPDATE: of two processes racing, one wins)."""
    return statements.restart_flow_run(_ConnectionDriver(connection), run, state)
