"""Committing write-behind events (``write_behind.commit_queued``), as the store and its
writer process both do: one transaction with the mark; kept when the database is
unavailable; one by one when refused, only the refused events dropped."""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from riverrun.db import write_behind
from riverrun.db.rows import micros
from riverrun.db.sqlite import SQLiteDatabase
from riverrun.db.statements import Database, Driver

if TYPE_CHECKING:
    from riverrun.db.write_behind import Write

_NOW = micros(datetime.now(UTC))


def _log(text: str | None) -> tuple[Any, ...]:
    # A log line's event; logs.message is NOT NULL, so None is refused for its content.
    return (write_behind.LOG, None, None, 20, "test", text, _NOW)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[SQLiteDatabase]:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    database = SQLiteDatabase(str(tmp_path / "events.db"))
    database.migrate(url)
    yield database
    database.dispose()


def _messages(database: SQLiteDatabase) -> list[str]:
    with database.read() as driver:
        return [row[0] for row in driver.query('SELECT "message" FROM "logs" ORDER BY "id"')]


def _marks(database: SQLiteDatabase) -> list[tuple[str, int]]:
    with database.read() as driver:
        return [(row[0], row[1]) for row in driver.query('SELECT * FROM "writer_marks"')]


def _writer(database: Database) -> Write:
    def write(events: list[tuple[Any, ...]], mark: tuple[str, int] | None = None) -> None:
        write_behind.write_events(database, events, mark)

    return write


def test_a_batch_and_its_mark_are_committed_together(database: SQLiteDatabase) -> None:
    queue = collections.deque([_log("one"), _log("two")])
    assert write_behind.commit_queued(queue, _writer(database), ("writer-1", 3)) == 2
    assert not queue
    assert _messages(database) == ["one", "two"]
    assert _marks(database) == [("writer-1", 3)]


def test_refused_events_alone_are_dropped_and_logged(
    database: SQLiteDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    queue = collections.deque([_log("one"), _log(None), _log("three")])
    assert write_behind.commit_queued(queue, _writer(database), ("writer-1", 4)) == 3
    assert _messages(database) == ["one", "three"]
    assert _marks(database) == [("writer-1", 4)]  # set on its own, after the events
    [record] = [r for r in caplog.records if "Dropped a run-history event" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is sqlite3.IntegrityError


class _Unavailable:
    """A database whose write transactions fail as a locked SQLite file does, until
    ``after`` of them have been begun."""

    def __init__(self, database: SQLiteDatabase, after: int = 1_000) -> None:
        self._database = database
        self._after = after
        self.begun = 0

    @contextmanager
    def write(self) -> Iterator[Driver]:
        self.begun += 1
        if self.begun > self._after:
            raise sqlite3.OperationalError("database is locked")
        with self._database.write() as driver:
            yield driver

    @contextmanager
    def read(self) -> Iterator[Driver]:
        with self._database.read() as driver:
            yield driver


def test_an_unavailable_database_keeps_every_event_in_order(database: SQLiteDatabase) -> None:
    events = [_log("one"), _log("two")]
    queue = collections.deque([*events])
    with pytest.raises(sqlite3.OperationalError):
        write_behind.commit_queued(queue, _writer(_Unavailable(database, 0)), ("writer-1", 1))
    assert list(queue) == events
    assert _messages(database) == []
    assert _marks(database) == []
    # Tried again later: all of it, with the mark.
    assert write_behind.commit_queued(queue, _writer(database), ("writer-1", 1)) == 2
    assert _messages(database) == ["one", "two"]
    assert _marks(database) == [("writer-1", 1)]


def test_unavailable_midway_one_by_one_keeps_the_rest(database: SQLiteDatabase) -> None:
    # The batch is refused (one bad event), then the database goes away after the first
    # event was written alone: the rest is kept, and the mark not set.
    events = [_log("one"), _log(None), _log("three")]
    queue = collections.deque(events)
    flaky = _Unavailable(database, after=2)  # the batch, then "one" alone
    with pytest.raises(sqlite3.OperationalError):
        write_behind.commit_queued(queue, _writer(flaky), ("writer-1", 7))
    assert list(queue) == events[1:]
    assert _messages(database) == ["one"]
    assert _marks(database) == []
