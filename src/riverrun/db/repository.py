"""Every query riverrun runs, written once for SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Row,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from riverrun.db.tables import UTCDateTime, cache_entries, flow_runs, logs, states, task_runs
from riverrun.exceptions import ObjectNotFoundError
from riverrun.states import TYPE_VALUES, State, StateType
from riverrun.store.protocol import CacheEntry, FlowRun, LogEntry, StateRecord, TaskRun

__all__ = [
    "Batch",
    "apply_batch",
    "delete_cache_entries",
    "flow_run_row",
    "insert_flow_run",
    "log_entry",
    "restart_flow_run",
    "select_cache_entry",
    "select_flow_run",
    "select_flow_runs",
    "select_logs",
    "select_states",
    "select_task_runs",
    "state_row",
    "task_run_row",
    "upsert_cache_entry",
]


@dataclass(slots=True)
class Batch:
    """Write-behind rows gathered since the last flush, in arrival order."""

    task_runs: list[dict[str, Any]]
    states: list[dict[str, Any]]
    flow_run_updates: dict[str, dict[str, Any]]
    task_run_updates: dict[str, dict[str, Any]]
    logs: list[dict[str, Any]]

    @classmethod
    def empty(cls) -> Batch:
        return cls([], [], {}, {}, [])

    def __bool__(self) -> bool:
        return bool(
            self.task_runs
            or self.states
            or self.flow_run_updates
            or self.task_run_updates
            or self.logs
        )


def _state_columns(state: State | None) -> dict[str, Any]:
    if state is None:
        return {"state_type": None, "state_name": None, "state_message": None}
    return {
        "state_type": TYPE_VALUES[state.type],
        "state_name": state.name,
        "state_message": state.message,
    }


def flow_run_row(run: FlowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "flow_name": run.flow_name,
        "parameters": run.parameters,
        "tags": list(run.tags),
        "parent_flow_run_id": run.parent_flow_run_id,
        "parent_task_run_id": run.parent_task_run_id,
        "run_count": run.run_count,
        "created": run.created or datetime.now(UTC),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "hostname": run.hostname,
        "pid": run.pid,
        "heartbeat": run.heartbeat,
        "entrypoint": run.entrypoint,
        "resume_parameters": run.resume_parameters,
        **_state_columns(run.state),
    }


def task_run_row(run: TaskRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "flow_run_id": run.flow_run_id,
        "name": run.name,
        "task_name": run.task_name,
        "dynamic_key": run.dynamic_key,
        "tags": list(run.tags),
        "run_count": run.run_count,
        "cache_key": run.cache_key,
        "upstream_task_run_ids": list(run.upstream_task_run_ids),
        "subflow_run_id": run.subflow_run_id,
        "created": run.created or datetime.now(UTC),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "task_key": run.task_key,
        "result": run.result,
        **_state_columns(run.state),
    }


def state_row(
    run_id: str, run_kind: str, state: State, message: str | None = None
) -> dict[str, Any]:
    """A row of the state history (``message`` overrides the state's own)."""
    return {
        "run_id": run_id,
        "run_kind": run_kind,
        "type": TYPE_VALUES[state.type],
        "name": state.name,
        "message": state.message if message is None else message,
        "timestamp": state.timestamp,
    }


def insert_flow_run(connection: Connection, run: FlowRun) -> None:
    """Insert a new flow run and, if it has one, its first state."""
    connection.execute(insert(flow_runs), [flow_run_row(run)])
    if run.state is not None:
        connection.execute(insert(states), [state_row(run.id, "flow", run.state)])


def apply_batch(connection: Connection, batch: Batch) -> None:
    """Write one flush's worth of rows: inserts first, then each run's latest columns."""
    for table, rows in ((task_runs, batch.task_runs), (states, batch.states), (logs, batch.logs)):
        if rows:
            _bulk_insert(connection, table, rows)
    for table, updates in (
        (flow_runs, batch.flow_run_updates),
        (task_runs, batch.task_run_updates),
    ):
        # One executemany per distinct column set (all share the same set today).
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for run_id, values in updates.items():
            groups.setdefault(tuple(sorted(values)), []).append({"_id": run_id, **values})
        for columns, rows in groups.items():
            statement = (
                update(table)
                .where(table.c.id == bindparam("_id"))
                .values({column: bindparam(column) for column in columns})
            )
            connection.execute(statement, rows)


# (the fields down to the second, their text) of the last timestamp written: a flush
# writes several timestamps per task run, nearly all within the same second.
_second_text: tuple[tuple[int, ...], str] = ((), "")


def _sqlite_timestamp(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DateTime type reads back, in UTC like UTCDateTime:
    ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    global _second_text
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    second = (value.year, value.month, value.day, value.hour, value.minute, value.second)
    cached, text = _second_text
    if cached != second:
        text = value.replace(microsecond=0, tzinfo=None).isoformat(" ")
        _second_text = (second, text)
    return f"{text}.{value.microsecond:06d}"


def _sqlite_json(value: Any) -> str:
    # Most tags and upstream lists are empty: skip the encoder for them.
    return "[]" if value == [] else json.dumps(value)


def _bulk_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT many rows, handing the driver ready values on SQLite and PostgreSQL.

    The write-behind queue inserts a few rows per task run; SQLAlchemy's per-value bind
    processing cost more than the database itself, so for the two drivers riverrun
    ships with, values are converted here once per column and sent with one
    ``executemany``. Other dialects use the ordinary Core insert.
    """
    dialect = connection.dialect
    to_json: Callable[[Any], Any]
    if dialect.name == "sqlite":
        placeholder, to_timestamp, to_json = "?", _sqlite_timestamp, _sqlite_json
    elif dialect.name == "postgresql" and dialect.driver == "psycopg":
        from psycopg.types.json import Json

        placeholder, to_timestamp, to_json = "%s", _identity, Json
    else:
        connection.execute(insert(table), rows)
        return
    names = list(rows[0])
    conversions: list[tuple[int, Callable[[Any], Any]]] = []
    for position, name in enumerate(names):
        kind = table.c[name].type
        if isinstance(kind, UTCDateTime):
            conversions.append((position, to_timestamp))
        elif isinstance(kind, JSON):
            conversions.append((position, to_json))
    quote = dialect.identifier_preparer.quote
    statement = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(table.name),
        ", ".join(quote(name) for name in names),
        ", ".join([placeholder] * len(names)),
    )
    values = itemgetter(*names)
    if conversions:
        parameters = []
        for row in rows:
            converted = list(values(row))
            for position, convert in conversions:
                converted[position] = convert(converted[position])
            parameters.append(tuple(converted))
    else:
        parameters = [values(row) for row in rows]
    connection.exec_driver_sql(statement, parameters)


def _identity(value: Any) -> Any:
    return value


def _state(row: Row[Any]) -> State | None:
    if row.state_type is None:
        return None
    return State(StateType(row.state_type), row.state_name, message=row.state_message)


def _flow_run(row: Row[Any]) -> FlowRun:
    return FlowRun(
        id=row.id,
        name=row.name,
        flow_name=row.flow_name,
        parameters=row.parameters,
        tags=list(row.tags),
        parent_flow_run_id=row.parent_flow_run_id,
        parent_task_run_id=row.parent_task_run_id,
        state=_state(row),
        run_count=row.run_count,
        created=row.created,
        start_time=row.start_time,
        end_time=row.end_time,
        hostname=row.hostname,
        pid=row.pid,
        heartbeat=row.heartbeat,
        entrypoint=row.entrypoint,
        resume_parameters=row.resume_parameters,
    )


def _task_run(row: Row[Any]) -> TaskRun:
    return TaskRun(
        id=row.id,
        name=row.name,
        task_name=row.task_name,
        flow_run_id=row.flow_run_id,
        dynamic_key=row.dynamic_key,
        tags=list(row.tags),
        state=_state(row),
        run_count=row.run_count,
        created=row.created,
        start_time=row.start_time,
        end_time=row.end_time,
        cache_key=row.cache_key,
        upstream_task_run_ids=list(row.upstream_task_run_ids),
        subflow_run_id=row.subflow_run_id,
        task_key=row.task_key,
        result=row.result,
    )


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
    row = connection.execute(select(flow_runs).where(flow_runs.c.id == flow_run_id)).first()
    if row is None:
        # Accept a unique prefix, as the CLI shows ids shortened.
        matches = connection.execute(
            select(flow_runs).where(flow_runs.c.id.startswith(flow_run_id, autoescape=True))
        ).all()
        if len(matches) != 1 or len(flow_run_id) < 4:
            raise ObjectNotFoundError("flow run", flow_run_id)
        row = matches[0]
    return _flow_run(row)


def select_task_runs(connection: Connection, flow_run_id: str) -> list[TaskRun]:
    query = (
        select(task_runs)
        .where(task_runs.c.flow_run_id == flow_run_id)
        .order_by(task_runs.c.created, task_runs.c.id)
    )
    return [_task_run(row) for row in connection.execute(query)]


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
    row = connection.execute(select(cache_entries).where(cache_entries.c.key == key)).first()
    return None if row is None else _cache_entry(row)


def upsert_cache_entry(connection: Connection, entry: CacheEntry) -> None:
    connection.execute(delete(cache_entries).where(cache_entries.c.key == entry.key))
    connection.execute(
        insert(cache_entries),
        [
            {
                "key": entry.key,
                "location": entry.location,
                "expiration": entry.expiration,
                "created": entry.created,
                "task_name": entry.task_name,
            }
        ],
    )


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


_ENDED_UNCOMPLETED = [
    TYPE_VALUES[StateType.FAILED],
    TYPE_VALUES[StateType.CRASHED],
    TYPE_VALUES[StateType.CANCELLED],
]


def restart_flow_run(connection: Connection, run: FlowRun, state: State) -> bool:
    """Move ``run`` to ``state`` if it is still Failed, Crashed or Cancelled (one
    conditional UPDATE: of two processes racing, one wins)."""
    moved = connection.execute(
        update(flow_runs)
        .where(flow_runs.c.id == run.id, flow_runs.c.state_type.in_(_ENDED_UNCOMPLETED))
        .values(
            hostname=run.hostname,
            pid=run.pid,
            heartbeat=run.heartbeat,
            end_time=None,
            **_state_columns(state),
        )
    ).rowcount
    if moved != 1:
        return False
    connection.execute(insert(states), [state_row(run.id, "flow", state)])
    return True
