"""The statements of the run path, as driver-level SQL text written once.

Creating a flow run, the write-behind batches (task runs, states, logs and each run's
latest columns), heartbeats, cache entries and the names of the concurrency limits are
sent as plain SQL with positional parameters, through a ``Driver``: the stdlib
``sqlite3`` module (``db/sqlite.py``, which keeps SQLAlchemy out of a run's process) or
a SQLAlchemy connection (``repository.connection_driver``: PostgreSQL via psycopg, and
SQLite wherever an engine is open anyway). No SQLAlchemy here.

Values are converted once per column, by column name: every timestamp column is a
``UTCDateTime`` and every JSON column a ``JSON`` in ``tables.py`` (a test keeps the
names below equal to the tables). On SQLite the text written is the text SQLAlchemy
writes and reads back, so either side reads what the other wrote.

The write-behind rows' columns, conversions and statements live in ``rows.py`` (only
the standard library: a writer process imports it alone) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from riverrun.db.rows import (
    FLOW_RUN_LATEST,
    JSON_COLUMNS,
    LOG_COLUMNS,
    POSTGRESQL,
    POSTGRESQL_JSON_TEXT,
    SQLITE,
    STATE_COLUMNS,
    TASK_RUN_COLUMNS,
    TASK_RUN_LATEST,
    TASK_RUN_LATEST_POSITIONS,
    TIMESTAMP_COLUMNS,
    Batch,
    Dialect,
    _identity,
    apply_batch,
    from_micros,
    insert_values,
    micros,
    set_writer_mark,
    sqlite_micros,
    sqlite_timestamp,
    take_writer_mark,
)
from riverrun.db.rows import converter as _converter
from riverrun.db.rows import insert_text as _insert_text
from riverrun.db.rows import statement as _statement
from riverrun.exceptions import ObjectNotFoundError
from riverrun.states import TYPE_VALUES, State, StateType
from riverrun.store.protocol import CacheEntry, FlowRun, TaskRun

__all__ = [
    "FLOW_RUN_COLUMNS",
    "FLOW_RUN_LATEST",
    "JSON_COLUMNS",
    "LOG_COLUMNS",
    "POSTGRESQL",
    "POSTGRESQL_JSON_TEXT",
    "SQLITE",
    "STATE_COLUMNS",
    "TASK_RUN_COLUMNS",
    "TASK_RUN_LATEST",
    "TASK_RUN_LATEST_POSITIONS",
    "TIMESTAMP_COLUMNS",
    "Batch",
    "Database",
    "Dialect",
    "Driver",
    "apply_batch",
    "flow_run_row",
    "from_micros",
    "insert_flow_run",
    "insert_rows",
    "insert_values",
    "micros",
    "remove_writer_marks",
    "select_cache_entry",
    "select_limit_names",
    "set_writer_mark",
    "sqlite_micros",
    "sqlite_timestamp",
    "state_columns",
    "state_row",
    "state_values",
    "take_writer_mark",
    "task_run_values",
    "update_heartbeats",
    "upsert_cache_entry",
    "writer_mark_names",
]


class Driver(Protocol):
    """One open transaction, as the statements below use it."""

    @property
    def dialect(self) -> Dialect: ...

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``statement`` once per row; the number of rows it changed."""

    def query(self, statement: str, parameters: Sequence[Any] = ()) -> list[Sequence[Any]]: ...


class Database(Protocol):
    """Where the run path's transactions come from (see ``EmbeddedStore``)."""

    def write(self) -> AbstractContextManager[Driver]: ...

    def read(self) -> AbstractContextManager[Driver]: ...


# A flow run's columns, as the records below take them (a test keeps them equal to
# tables.py); a task run's are ``rows.TASK_RUN_COLUMNS``.
FLOW_RUN_COLUMNS = (
    "id",
    "name",
    "flow_name",
    "state_type",
    "state_name",
    "state_message",
    "parameters",
    "tags",
    "parent_flow_run_id",
    "parent_task_run_id",
    "run_count",
    "created",
    "start_time",
    "end_time",
    "hostname",
    "pid",
    "heartbeat",
    "entrypoint",
    "resume_parameters",
)

# -- rows ------------------------------------------------------------------------------


def state_columns(state: State | None) -> dict[str, Any]:
    if state is None:
        return {"state_type": None, "state_name": None, "state_message": None}
    return {
        "state_type": TYPE_VALUES[state.type],
        "state_name": state.name,
        "state_message": state.message,
    }


def task_run_values(run: TaskRun) -> tuple[Any, ...]:
    """A task run as a write-behind row (``TASK_RUN_COLUMNS`` order)."""
    state = run.state
    return (
        run.id,
        run.flow_run_id,
        run.name,
        run.task_name,
        run.dynamic_key,
        None if state is None else TYPE_VALUES[state.type],
        None if state is None else state.name,
        None if state is None else state.message,
        tuple(run.tags),
        run.run_count,
        run.cache_key,
        tuple(run.upstream_task_run_ids),
        run.subflow_run_id,
        micros(run.created or datetime.now(UTC)),
        micros(run.start_time),
        micros(run.end_time),
        run.task_key,
        run.result,
    )


def state_values(
    run_id: str, run_kind: str, state: State, at: int | None = None
) -> tuple[Any, ...]:
    """A state of the history as a write-behind row (``STATE_COLUMNS`` order); ``at``
    is its time in microseconds when the caller has it already."""
    return (
        run_id,
        run_kind,
        TYPE_VALUES[state.type],
        state.name,
        state.message,
        micros(state.timestamp) if at is None else at,
    )


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
        **state_columns(run.state),
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


def flow_run_record(row: Mapping[Any, Any]) -> FlowRun:
    """A ``flow_runs`` row (its values as SQLAlchemy reads them) as a ``FlowRun``."""
    return FlowRun(
        id=row["id"],
        name=row["name"],
        flow_name=row["flow_name"],
        parameters=row["parameters"],
        tags=list(row["tags"]),
        parent_flow_run_id=row["parent_flow_run_id"],
        parent_task_run_id=row["parent_task_run_id"],
        state=_state(row),
        run_count=row["run_count"],
        created=row["created"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        hostname=row["hostname"],
        pid=row["pid"],
        heartbeat=row["heartbeat"],
        entrypoint=row["entrypoint"],
        resume_parameters=row["resume_parameters"],
    )


def task_run_record(row: Mapping[Any, Any]) -> TaskRun:
    """A ``task_runs`` row (its values as SQLAlchemy reads them) as a ``TaskRun``."""
    return TaskRun(
        id=row["id"],
        name=row["name"],
        task_name=row["task_name"],
        flow_run_id=row["flow_run_id"],
        dynamic_key=row["dynamic_key"],
        tags=list(row["tags"]),
        state=_state(row),
        run_count=row["run_count"],
        created=row["created"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        cache_key=row["cache_key"],
        upstream_task_run_ids=list(row["upstream_task_run_ids"]),
        subflow_run_id=row["subflow_run_id"],
        task_key=row["task_key"],
        result=row["result"],
    )


def _state(row: Mapping[Any, Any]) -> State | None:
    if row["state_type"] is None:
        return None
    return State(StateType(row["state_type"]), row["state_name"], message=row["state_message"])


# -- statements ------------------------------------------------------------------------


def insert_rows(driver: Driver, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dicts with the same keys) into ``table`` with one executemany.

    The write-behind queue inserts a few rows per task run; per-value bind processing
    cost more than the database itself, so values are converted here once per column.
    """
    if not rows:
        return
    dialect = driver.dialect
    columns = tuple(rows[0])
    convert = _converter(dialect, columns)
    driver.executemany(_insert_text(dialect, table, columns), [convert(row) for row in rows])


def insert_flow_run(driver: Driver, run: FlowRun) -> None:
    """Insert a new flow run and, if it has one, its first state."""
    insert_rows(driver, "flow_runs", [flow_run_row(run)])
    if run.state is not None:
        insert_values(driver, "states", STATE_COLUMNS, [state_values(run.id, "flow", run.state)])


def update_heartbeats(driver: Driver, flow_run_ids: Sequence[str], now: datetime) -> None:
    """Set the heartbeat of the given flow runs to ``now``."""
    dialect = driver.dialect
    for start in range(0, len(flow_run_ids), 500):  # under every driver's parameter limit
        chunk = flow_run_ids[start : start + 500]
        marks = ", ".join([dialect.placeholder] * len(chunk))
        driver.executemany(
            f'UPDATE "flow_runs" SET "heartbeat" = {dialect.placeholder} WHERE "id" IN ({marks})',
            [(dialect.write_timestamp(now), *chunk)],
        )


_CACHE_COLUMNS = ("key", "location", "expiration", "created", "task_name")


def select_cache_entry(driver: Driver, key: str) -> CacheEntry | None:
    dialect = driver.dialect
    text = _statement(
        ("select cache", dialect.placeholder),
        lambda: 'SELECT {} FROM "cache_entries" WHERE "key" = {}'.format(
            ", ".join(f'"{name}"' for name in _CACHE_COLUMNS), dialect.placeholder
        ),
    )
    rows = driver.query(text, (key,))
    if not rows:
        return None
    key, location, expiration, created, task_name = rows[0]
    created_at = dialect.read_timestamp(created)
    assert created_at is not None
    return CacheEntry(
        key=key,
        location=location,
        expiration=dialect.read_timestamp(expiration),
        created=created_at,
        task_name=task_name,
    )


def upsert_cache_entry(driver: Driver, entry: CacheEntry) -> None:
    mark = driver.dialect.placeholder
    driver.executemany(f'DELETE FROM "cache_entries" WHERE "key" = {mark}', [(entry.key,)])
    insert_rows(
        driver,
        "cache_entries",
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


def writer_mark_names(driver: Driver) -> list[str]:
    """The writers that have a mark (see ``rows.set_writer_mark``)."""
    return [str(row[0]) for row in driver.query('SELECT "writer" FROM "writer_marks"')]


def remove_writer_marks(driver: Driver, writers: Sequence[str]) -> None:
    """Remove the marks of ``writers``."""
    mark = driver.dialect.placeholder
    driver.executemany(
        f'DELETE FROM "writer_marks" WHERE "writer" = {mark}', [(writer,) for writer in writers]
    )


def select_limit_names(driver: Driver) -> frozenset[str]:
    """The names of every concurrency limit."""
    return frozenset(row[0] for row in driver.query('SELECT "name" FROM "concurrency_limits"'))


# -- resuming a flow run ------------------------------------------------------------------


def _select_text(dialect: Dialect, table: str, columns: tuple[str, ...], where: str) -> str:
    return _statement(
        ("select", dialect.placeholder, table, where),
        lambda: 'SELECT {} FROM "{}" WHERE {}'.format(
            ", ".join(f'"{name}"' for name in columns),
            table,
            where.replace("?", dialect.placeholder),
        ),
    )


def _reader(
    dialect: Dialect, columns: tuple[str, ...]
) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """A function turning a row as the driver gives it into values as SQLAlchemy reads
    them (aware datetimes, decoded JSON)."""
    conversions = [
        dialect.read_timestamp
        if name in TIMESTAMP_COLUMNS
        else dialect.read_json
        if name in JSON_COLUMNS
        else _identity
        for name in columns
    ]
    return lambda row: {
        name: convert(value) for name, convert, value in zip(columns, conversions, row, strict=True)
    }


def select_flow_run(driver: Driver, flow_run_id: str) -> FlowRun:
    """The flow run with this id, or else the only one whose id starts with it (the CLI
    shows ids shortened).

    Raises:
        ObjectNotFoundError: none, or more than one, or a prefix under 4 characters.
    """
    dialect = driver.dialect
    read = _reader(dialect, FLOW_RUN_COLUMNS)
    rows = driver.query(
        _select_text(dialect, "flow_runs", FLOW_RUN_COLUMNS, '"id" = ?'), (flow_run_id,)
    )
    if not rows:
        pattern = flow_run_id.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
        rows = driver.query(
            _select_text(dialect, "flow_runs", FLOW_RUN_COLUMNS, "\"id\" LIKE ? ESCAPE '/'"),
            (pattern,),
        )
        if len(rows) != 1 or len(flow_run_id) < 4:
            raise ObjectNotFoundError("flow run", flow_run_id)
    return flow_run_record(read(rows[0]))


def select_task_runs(driver: Driver, flow_run_id: str) -> list[TaskRun]:
    """The task runs of a flow run, oldest first."""
    dialect = driver.dialect
    read = _reader(dialect, TASK_RUN_COLUMNS)
    statement = _select_text(
        dialect, "task_runs", TASK_RUN_COLUMNS, '"flow_run_id" = ? ORDER BY "created", "id"'
    )
    return [task_run_record(read(row)) for row in driver.query(statement, (flow_run_id,))]


_ENDED_UNCOMPLETED = (
    TYPE_VALUES[StateType.FAILED],
    TYPE_VALUES[StateType.CRASHED],
    TYPE_VALUES[StateType.CANCELLED],
)


def restart_flow_run(driver: Driver, run: FlowRun, state: State) -> bool:
    """Move ``run`` to ``state`` if it is still Failed, Crashed or Cancelled (one
    conditional UPDATE: of two processes racing, one wins)."""
    dialect = driver.dialect
    values = {
        "hostname": run.hostname,
        "pid": run.pid,
        "heartbeat": run.heartbeat,
        "end_time": None,
        **state_columns(state),
    }
    columns = tuple(values)
    mark = dialect.placeholder
    statement = _statement(
        ("restart", mark),
        lambda: 'UPDATE "flow_runs" SET {} WHERE "id" = {} AND "state_type" IN ({})'.format(
            ", ".join(f'"{name}" = {mark}' for name in columns),
            mark,
            ", ".join([mark] * len(_ENDED_UNCOMPLETED)),
        ),
    )
    row = (*_converter(dialect, columns)(values), run.id, *_ENDED_UNCOMPLETED)
    if driver.executemany(statement, [row]) != 1:
        return False
    insert_values(driver, "states", STATE_COLUMNS, [state_values(run.id, "flow", state)])
    return True
