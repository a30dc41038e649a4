"""The run path's statements on their own: timestamps as microseconds, multi-row INSERTs."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from riverrun.db import statements
from riverrun.db.sqlite import SQLiteDatabase
from riverrun.states import State, StateType


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 21, 22, 15, 3, 123456, tzinfo=UTC),
        datetime(2026, 11, 21, 23, 15, 3, 999999, tzinfo=timezone(timedelta(hours=1))),
        datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),  # before the epoch
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_microseconds_round_trip_and_read_as_sqlalchemy_writes(moment: datetime) -> None:
    value = statements.micros(moment)
    assert isinstance(value, int)
    assert statements.from_micros(value) == moment
    text = statements.sqlite_micros(value)
    # The text SQLAlchemy's DateTime writes for the same moment in UTC.
    assert text == moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    assert statements.SQLITE.read_timestamp(text) == moment


def test_a_naive_datetime_is_taken_as_local_time() -> None:
    naive = datetime(2026, 6, 1, 12, 0, 0, 5)
    assert statements.from_micros(statements.micros(naive)) == naive.astimezone(UTC)


def test_none_stays_none() -> None:
    assert statements.micros(None) is None
    assert statements.from_micros(None) is None
    assert statements.sqlite_micros(None) is None


def test_multi_row_inserts_keep_every_row_in_order(tmp_path: Path) -> None:
    """More rows than one multi-row INSERT takes, and a remainder: all written, in the
    order given (the state history is read back by id)."""
    database = SQLiteDatabase(str(tmp_path / "history.db"))
    database.migrate(f"sqlite:///{tmp_path / 'history.db'}")
    per = statements.SQLITE.rows_per_insert
    assert per > 1
    start = datetime(2026, 11, 21, tzinfo=UTC)
    rows = [
        statements.state_values(
            f"run-{index % 7}",
            "task",
            State(
                StateType.RUNNING, message=f"#{index}", timestamp=start + timedelta(seconds=index)
            ),
        )
        for index in range(2 * per + 5)
    ]
    with database.write() as driver:
        statements.insert_values(driver, "states", statements.STATE_COLUMNS, rows)
    with sqlite3.connect(tmp_path / "history.db") as connection:
        found = connection.execute('SELECT message, timestamp FROM "states" ORDER BY id').fetchall()
    database.dispose()
    assert [message for message, _ in found] == [f"#{index}" for index in range(2 * per + 5)]
    assert found[-1][1] == statements.sqlite_timestamp(start + timedelta(seconds=2 * per + 4))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ((), "[]"),
        ([], "[]"),
        (("a", "b"), '["a", "b"]'),
        (["a"], '["a"]'),
        ({}, "{}"),  # a flow run's parameters: an empty mapping is not an empty list
        ({"x": [1, 2]}, '{"x": [1, 2]}'),
    ],
)
def test_json_columns_as_sqlite_stores_them(value: object, text: str) -> None:
    assert statements.SQLITE.write_json(value) == text
    assert statements.SQLITE.read_json(text) == (list(value) if isinstance(value, tuple) else value)
