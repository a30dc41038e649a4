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
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any, Protocol

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
    "TIMESTAMP_COLUMNS",
    "Batch",
    "Database",
    "Dialect",
    "Driver",
    "apply_batch",
    "flow_run_row",
    "insert_flow_run",
    "insert_rows",
    "insert_values",
    "micros",
    "select_cache_entry",
    "select_limit_names",
    "set_writer_mark",
    "sqlite_timestamp",
    "state_columns",
    "state_row",
    "state_values",
    "take_writer_mark",
    "task_run_values",
    "update_heartbeats",
    "upsert_cache_entry",
]

#: The columns holding an aware datetime (``UTCDateTime``), in whichever table.
TIMESTAMP_COLUMNS = frozenset(
    {"created", "start_time", "end_time", "heartbeat", "timestamp", "expiration"}
    | {"rate_empty_at", "updated"}
)
#: The columns holding JSON, in whichever table.
JSON_COLUMNS = frozenset({"parameters", "tags", "upstream_task_run_ids"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(value: datetime | None) -> int | None:
    """``value`` as integer microseconds since the Unix epoch: how the write-behind rows
    carry time (a datetime costs several times more to pickle, pipe and convert). A
    naive datetime is taken as local time, as ``astimezone`` takes it."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.astimezone(UTC)
    return (value - _EPOCH) // _MICROSECOND


def from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


# (the whole seconds, their text) of the last timestamp written: a flush writes several
# timestamps per task run, nearly all within the same second.
_second_text: tuple[int | None, str] = (None, "")


def sqlite_micros(value: int | None) -> str | None:
    """The text SQLAlchemy's SQLite DateTime type reads back, in UTC like UTCDateTime:
    ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    global _second_text
    if value is None:
        return None
    seconds, fraction = divmod(value, 1_000_000)
    cached, text = _second_text
    if cached != seconds:
        text = (_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=None).isoformat(" ")
        _second_text = (seconds, text)
    return f"{text}.{fraction:06d}"


def sqlite_timestamp(value: datetime | None) -> str | None:
    """A datetime as ``sqlite_micros`` writes it."""
    return sqlite_micros(micros(value))


def _sqlite_json(value: Any) -> str:
    # Most tags and upstream lists are empty: skip the encoder for them.
    return "[]" if value == [] else json.dumps(value)


def _read_sqlite_timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _read_aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one driver wants its parameters and gives back its values."""

    name: str
    placeholder: str
    write_timestamp: Callable[[Any], Any]  # from a datetime
    write_micros: Callable[[Any], Any]  # from integer microseconds (see ``micros``)
    write_json: Callable[[Any], Any]
    read_timestamp: Callable[[Any], datetime | None]
    read_json: Callable[[Any], Any]
    # The most rows one multi-row INSERT carries (1: one statement per row).
    rows_per_insert: int = 1


# SQLite binds at most 32,766 values per statement (999 before 3.32): 64 rows of the
# widest run-path table stay far below either limit.
SQLITE = Dialect(
    "sqlite",
    "?",
    sqlite_timestamp,
    sqlite_micros,
    _sqlite_json,
    _read_sqlite_timestamp,
    json.loads,
    rows_per_insert=64 if sqlite3.sqlite_version_info >= (3, 32) else 16,
)


def _postgres_json(value: Any) -> Any:
    from psycopg.types.json import Json

    return Json(value)


# The drivers give JSON back decoded. (psycopg's executemany already pipelines rows.)
POSTGRESQL = Dialect(
    "postgresql", "%s", _identity, from_micros, _postgres_json, _read_aware, _identity
)
# Other PostgreSQL drivers (psycopg2) take JSON as text the server casts.
POSTGRESQL_JSON_TEXT = Dialect(
    "postgresql", "%s", _identity, from_micros, json.dumps, _read_aware, _identity
)


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


# The columns of the two run tables, as the records below take them (a test keeps them
# equal to tables.py).
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
TASK_RUN_COLUMNS = (
    "id",
    "flow_run_id",
    "name",
    "task_name",
    "dynamic_key",
    "state_type",
    "state_name",
    "state_message",
    "tags",
    "run_count",
    "cache_key",
    "upstream_task_run_ids",
    "subflow_run_id",
    "created",
    "start_time",
    "end_time",
    "task_key",
    "result",
)


# The columns of the write-behind rows, in the order their tuples hold them. Timestamps
# are integer microseconds (``micros``), JSON columns plain Python values.
STATE_COLUMNS = ("run_id", "run_kind", "type", "name", "message", "timestamp", "event_id")
LOG_COLUMNS = ("flow_run_id", "task_run_id", "level", "logger", "message", "timestamp", "event_id")
# A run's columns that follow its latest state: a flow run's, then a task run's two more.
FLOW_RUN_LATEST = (
    "state_type",
    "state_name",
    "state_message",
    "run_count",
    "start_time",
    "end_time",
)
TASK_RUN_LATEST = (*FLOW_RUN_LATEST, "result", "cache_key")
#: Where each of ``TASK_RUN_LATEST`` sits in a task run's row.
TASK_RUN_LATEST_POSITIONS = tuple(TASK_RUN_COLUMNS.index(name) for name in TASK_RUN_LATEST)


@dataclass(slots=True)
class Batch:
    """Write-behind rows gathered since the last flush, in arrival order: tuples (lists
    for task runs, which take their latest state in place) in the column orders above
    and ``TASK_RUN_COLUMNS``; the updates are keyed by run id."""

    task_runs: list[list[Any]]
    states: list[tuple[Any, ...]]
    flow_run_updates: dict[str, tuple[Any, ...]]
    task_run_updates: dict[str, tuple[Any, ...]]
    logs: list[tuple[Any, ...]]

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
        list(run.tags),
        run.run_count,
        run.cache_key,
        list(run.upstream_task_run_ids),
        run.subflow_run_id,
        micros(run.created or datetime.now(UTC)),
        micros(run.start_time),
        micros(run.end_time),
        run.task_key,
        run.result,
    )


def state_values(
    run_id: str, run_kind: str, state: State, event_id: str | None = None
) -> tuple[Any, ...]:
    """A state of the history as a write-behind row (``STATE_COLUMNS`` order)."""
    return (
        run_id,
        run_kind,
        TYPE_VALUES[state.type],
        state.name,
        state.message,
        micros(state.timestamp),
        event_id,
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


# -- statement text -----------------------------------------------------------------------

_texts: dict[tuple[str, ...], str] = {}


def _statement(key: tuple[str, ...], build: Callable[[], str]) -> str:
    text = _texts.get(key)
    if text is None:
        text = _texts[key] = build()
    return text


def _insert_text(dialect: Dialect, table: str, columns: tuple[str, ...], rows: int = 1) -> str:
    return _statement(
        ("insert", dialect.placeholder, table, str(rows), *columns),
        lambda: 'INSERT INTO "{}" ({}) VALUES {}'.format(
            table,
            ", ".join(f'"{name}"' for name in columns),
            ", ".join(["({})".format(", ".join([dialect.placeholder] * len(columns)))] * rows),
        ),
    )


def _update_text(dialect: Dialect, table: str, columns: tuple[str, ...]) -> str:
    mark = dialect.placeholder
    return _statement(
        ("update", mark, table, *columns),
        lambda: 'UPDATE "{}" SET {} WHERE "id" = {}'.format(
            table, ", ".join(f'"{name}" = {mark}' for name in columns), mark
        ),
    )


def _converter(
    dialect: Dialect, columns: Sequence[str]
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function turning a row (a dict with these keys) into the driver's values."""
    values = itemgetter(*columns)
    conversions: list[tuple[int, Callable[[Any], Any]]] = []
    for position, name in enumerate(columns):
        if name in TIMESTAMP_COLUMNS:
            conversions.append((position, dialect.write_timestamp))
        elif name in JSON_COLUMNS:
            conversions.append((position, dialect.write_json))
    if len(columns) == 1:
        single = columns[0]
        conversion = conversions[0][1] if conversions else _identity
        return lambda row: (conversion(row[single]),)
    if not conversions:
        return values

    def convert(row: dict[str, Any]) -> tuple[Any, ...]:
        converted = list(values(row))
        for position, conversion in conversions:
            converted[position] = conversion(converted[position])
        return tuple(converted)

    return convert


_RowConverter = Callable[[Sequence[Any]], tuple[Any, ...]]
_values_converters: dict[tuple[Dialect, tuple[str, ...]], _RowConverter] = {}


def _values_converter(dialect: Dialect, columns: tuple[str, ...]) -> _RowConverter:
    """A function turning a write-behind row (``columns`` order, timestamps in
    microseconds) into the driver's values.

    It is compiled once per table and dialect into a single tuple display
    (``lambda row: (row[0], stamp(row[1]), ...)``): the writer converts a few rows per
    task run, and a loop over the columns cost as much as SQLite's insert. The source is
    made from the column names of this module only.
    """
    key = (dialect, columns)
    convert = _values_converters.get(key)
    if convert is None:
        parts = []
        for position, name in enumerate(columns):
            if name in TIMESTAMP_COLUMNS:
                parts.append(f"stamp(row[{position}])")
            elif name in JSON_COLUMNS:
                parts.append(f"to_json(row[{position}])")
            else:
                parts.append(f"row[{position}]")
        namespace = {"stamp": dialect.write_micros, "to_json": dialect.write_json}
        convert = eval(f"lambda row: ({', '.join(parts)},)", namespace)
        _values_converters[key] = convert
    return convert


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


def insert_values(
    driver: Driver, table: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT write-behind ``rows`` (``columns`` order) into ``table``: on SQLite as
    multi-row INSERTs of ``rows_per_insert`` rows, which save SQLite a statement step
    per row; the rows keep their order."""
    if not rows:
        return
    dialect = driver.dialect
    convert = _values_converter(dialect, columns)
    values = [convert(row) for row in rows]
    per = dialect.rows_per_insert
    whole = len(values) - len(values) % per if per > 1 else 0
    if whole:
        driver.executemany(
            _insert_text(dialect, table, columns, per),
            [
                tuple(chain.from_iterable(values[start : start + per]))
                for start in range(0, whole, per)
            ],
        )
    if whole < len(values):
        driver.executemany(_insert_text(dialect, table, columns), values[whole:])


def _update_values(
    driver: Driver, table: str, columns: tuple[str, ...], updates: dict[str, tuple[Any, ...]]
) -> None:
    """Set ``columns`` of each run (keyed by id) to its values, in one executemany."""
    if not updates:
        return
    dialect = driver.dialect
    convert = _values_converter(dialect, columns)
    driver.executemany(
        _update_text(dialect, table, columns),
        [(*convert(values), run_id) for run_id, values in updates.items()],
    )


def insert_flow_run(driver: Driver, run: FlowRun) -> None:
    """Insert a new flow run and, if it has one, its first state."""
    insert_rows(driver, "flow_runs", [flow_run_row(run)])
    if run.state is not None:
        insert_values(driver, "states", STATE_COLUMNS, [state_values(run.id, "flow", run.state)])


def apply_batch(driver: Driver, batch: Batch) -> None:
    """Write one flush's worth of rows: inserts first, then each run's latest columns."""
    insert_values(driver, "task_runs", TASK_RUN_COLUMNS, batch.task_runs)
    insert_values(driver, "states", STATE_COLUMNS, batch.states)
    insert_values(driver, "logs", LOG_COLUMNS, batch.logs)
    _update_values(driver, "flow_runs", FLOW_RUN_LATEST, batch.flow_run_updates)
    _update_values(driver, "task_runs", TASK_RUN_LATEST, batch.task_run_updates)


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


def set_writer_mark(driver: Driver, writer: str, seq: int) -> None:
    """Record that ``writer`` committed its batches up to ``seq`` (see store/writer.py)."""
    mark = driver.dialect.placeholder
    driver.executemany(
        f'INSERT INTO "writer_marks" ("writer", "seq") VALUES ({mark}, {mark}) '
        'ON CONFLICT ("writer") DO UPDATE SET "seq" = excluded."seq"',
        [(writer, seq)],
    )


def take_writer_mark(driver: Driver, writer: str) -> int | None:
    """The last batch ``writer`` committed (None: none), removing its mark."""
    mark = driver.dialect.placeholder
    rows = driver.query(f'SELECT "seq" FROM "writer_marks" WHERE "writer" = {mark}', (writer,))
    if not rows:
        return None
    driver.executemany(f'DELETE FROM "writer_marks" WHERE "writer" = {mark}', [(writer,)])
    return int(rows[0][0])


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
