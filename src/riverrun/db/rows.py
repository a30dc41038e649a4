"""The write-behind rows and how they are written: what a writer process needs, and no
more.

Task runs, states and logs travel from ``EmbeddedStore``'s queue to the database as
flat tuples of plain values in the column orders below (timestamps in integer
microseconds, JSON columns as plain Python values). This module turns them into the
driver's values and writes them; ``statements.py`` re-exports all of it next to the
statements that need the record classes (``FlowRun``, ``State``...).

Only the standard library is imported at run time, and not ``dataclasses``,
``typing``, ``logging`` or, until a JSON value is written, ``json``
(``tests/db/test_writer_child.py``): the writer process for a SQLite file imports this
module, and its start-up is time the runs wait for.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter

# ``typing`` is not imported at run time (see above); mypy takes this name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from riverrun.db.statements import Driver

    _RowConverter = Callable[[Sequence[Any]], tuple[Any, ...]]

__all__ = [
    "EVENT_LOG_COLUMNS",
    "EVENT_STATE_COLUMNS",
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
    "Dialect",
    "apply_batch",
    "from_micros",
    "insert_values",
    "micros",
    "set_writer_mark",
    "sqlite_micros",
    "sqlite_timestamp",
    "take_writer_mark",
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


# (the whole seconds, their text and the dot) of the last timestamp written: a flush
# writes several timestamps per task run, nearly all within the same second. One tuple,
# replaced whole, so that threads never pair a second with another's text.
_second_text: tuple[int | None, str] = (None, "")
# "000" to "999": a fraction's six digits as two lookups (a format spec cost twice that).
_DIGITS = tuple(f"{number:03d}" for number in range(1000))


def sqlite_micros(value: int | None) -> str | None:
    """The text SQLAlchemy's SQLite DateTime type reads back, in UTC like UTCDateTime:
    ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    global _second_text
    if value is None:
        return None
    seconds, fraction = divmod(value, 1_000_000)
    cached, text = _second_text
    if cached != seconds:
        text = (_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=None).isoformat(" ") + "."
        _second_text = (seconds, text)
    # One string built from the three parts (adding them made an intermediate one).
    return f"{text}{_DIGITS[fraction // 1000]}{_DIGITS[fraction % 1000]}"


def sqlite_timestamp(value: datetime | None) -> str | None:
    """A datetime as ``sqlite_micros`` writes it."""
    return sqlite_micros(micros(value))


# ``json`` (with ``re``, which it imports) is imported when first needed: the writer of
# runs without tags or upstream tasks never needs it.


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value)


def _json_value(text: str) -> Any:
    import json

    return json.loads(text)


def _sqlite_json(value: Any) -> str:
    # Most tags and upstream lists are empty (tuples in write-behind rows, lists
    # elsewhere): skip the encoder for them. An empty mapping stays "{}".
    return "[]" if value == () or value == [] else _json_text(value)


def _read_sqlite_timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _read_aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _identity(value: Any) -> Any:
    return value


class Dialect:
    """How one driver wants its parameters and gives back its values.

    Attributes:
        name: the database's (``sqlite``, ``postgresql``).
        placeholder: how a statement marks a parameter.
        write_timestamp: a datetime as the driver takes it.
        write_micros: integer microseconds (see ``micros``) as the driver takes them.
        write_json: a JSON value as the driver takes it.
        read_timestamp: an aware datetime from what the driver gives back.
        read_json: a JSON value from what the driver gives back.
        rows_per_insert: the most rows one multi-row INSERT carries (1: one statement
            per row).
    """

    __slots__ = (
        "name",
        "placeholder",
        "read_json",
        "read_timestamp",
        "rows_per_insert",
        "write_json",
        "write_micros",
        "write_timestamp",
    )

    def __init__(
        self,
        name: str,
        placeholder: str,
        write_timestamp: Callable[[Any], Any],
        write_micros: Callable[[Any], Any],
        write_json: Callable[[Any], Any],
        read_timestamp: Callable[[Any], datetime | None],
        read_json: Callable[[Any], Any],
        *,
        rows_per_insert: int = 1,
    ) -> None:
        self.name = name
        self.placeholder = placeholder
        self.write_timestamp = write_timestamp
        self.write_micros = write_micros
        self.write_json = write_json
        self.read_timestamp = read_timestamp
        self.read_json = read_json
        self.rows_per_insert = rows_per_insert

    def __repr__(self) -> str:
        return f"Dialect({self.name!r}, {self.placeholder!r})"


# SQLite binds at most 32,766 values per statement (999 before 3.32): 64 rows of the
# widest run-path table stay far below either limit.
SQLITE = Dialect(
    "sqlite",
    "?",
    sqlite_timestamp,
    sqlite_micros,
    _sqlite_json,
    _read_sqlite_timestamp,
    _json_value,
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
    "postgresql", "%s", _identity, from_micros, _json_text, _read_aware, _identity
)


# A task run's columns, as its write-behind row holds them (a test keeps them equal to
# tables.py).
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
# A state's and a log line's columns, in the order their rows hold them. Not their
# ``event_id``: only events a client reported over HTTP have one (the EVENT_ columns
# below); the rest leave it NULL by not naming it, which costs SQLite nothing where
# binding ``None`` costs the driver more than binding a string.
STATE_COLUMNS = ("run_id", "run_kind", "type", "name", "message", "timestamp")
LOG_COLUMNS = ("flow_run_id", "task_run_id", "level", "logger", "message", "timestamp")
# The same with the id the event's client gave it, last (``Batch.event_ids``).
EVENT_STATE_COLUMNS = (*STATE_COLUMNS, "event_id")
EVENT_LOG_COLUMNS = (*LOG_COLUMNS, "event_id")
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


class Batch:
    """Write-behind rows gathered since the last flush, in arrival order: tuples (lists
    for task runs, which take their latest state in place) in the column orders above;
    the updates are keyed by run id. With ``event_ids`` (events a client reported over
    HTTP) the state and log rows end with their event id (``EVENT_STATE_COLUMNS``,
    ``EVENT_LOG_COLUMNS``)."""

    __slots__ = (
        "event_ids",
        "flow_run_updates",
        "logs",
        "states",
        "task_run_updates",
        "task_runs",
    )

    def __init__(
        self,
        task_runs: list[list[Any]],
        states: list[tuple[Any, ...]],
        flow_run_updates: dict[str, tuple[Any, ...]],
        task_run_updates: dict[str, tuple[Any, ...]],
        logs: list[tuple[Any, ...]],
        *,
        event_ids: bool = False,
    ) -> None:
        self.task_runs = task_runs
        self.states = states
        self.flow_run_updates = flow_run_updates
        self.task_run_updates = task_run_updates
        self.logs = logs
        self.event_ids = event_ids

    @classmethod
    def empty(cls, *, event_ids: bool = False) -> Batch:
        return cls([], [], {}, {}, [], event_ids=event_ids)

    def __bool__(self) -> bool:
        return bool(
            self.task_runs
            or self.states
            or self.flow_run_updates
            or self.task_run_updates
            or self.logs
        )


# -- statement text -----------------------------------------------------------------------

_texts: dict[tuple[str, ...], str] = {}


def statement(key: tuple[str, ...], build: Callable[[], str]) -> str:
    """The text ``build`` makes, made once per ``key``."""
    text = _texts.get(key)
    if text is None:
        text = _texts[key] = build()
    return text


def insert_text(dialect: Dialect, table: str, columns: tuple[str, ...], rows: int = 1) -> str:
    return statement(
        ("insert", dialect.placeholder, table, str(rows), *columns),
        lambda: 'INSERT INTO "{}" ({}) VALUES {}'.format(
            table,
            ", ".join(f'"{name}"' for name in columns),
            ", ".join(["({})".format(", ".join([dialect.placeholder] * len(columns)))] * rows),
        ),
    )


def _update_text(dialect: Dialect, table: str, columns: tuple[str, ...]) -> str:
    mark = dialect.placeholder
    return statement(
        ("update", mark, table, *columns),
        lambda: 'UPDATE "{}" SET {} WHERE "id" = {}'.format(
            table, ", ".join(f'"{name}" = {mark}' for name in columns), mark
        ),
    )


def converter(
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
            insert_text(dialect, table, columns, per),
            [
                tuple(chain.from_iterable(values[start : start + per]))
                for start in range(0, whole, per)
            ],
        )
    if whole < len(values):
        driver.executemany(insert_text(dialect, table, columns), values[whole:])


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


def apply_batch(driver: Driver, batch: Batch) -> None:
    """Write one flush's worth of rows: inserts first, then each run's latest columns."""
    insert_values(driver, "task_runs", TASK_RUN_COLUMNS, batch.task_runs)
    if batch.event_ids:
        insert_values(driver, "states", EVENT_STATE_COLUMNS, batch.states)
        insert_values(driver, "logs", EVENT_LOG_COLUMNS, batch.logs)
    else:
        insert_values(driver, "states", STATE_COLUMNS, batch.states)
        insert_values(driver, "logs", LOG_COLUMNS, batch.logs)
    _update_values(driver, "flow_runs", FLOW_RUN_LATEST, batch.flow_run_updates)
    _update_values(driver, "task_runs", TASK_RUN_LATEST, batch.task_run_updates)


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
