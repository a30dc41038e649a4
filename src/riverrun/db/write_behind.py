"""The write-behind events and how they are committed: written once, for
``EmbeddedStore`` (committing in its own process) and for its writer process.

An event is a flat tuple of plain values, made by the store's ``record_*``/``set_state``
methods and tagged by its first item: cheap to make, to send to a writer process
(``marshal``) and to turn into rows. A commit turns a list of them into one ``Batch``
and writes it in one transaction, with the writer's mark when there is one:

- the database unavailable (locked past the busy timeout, unreachable): nothing is
  committed, the events go back to the head of the queue and the error is raised, for
  the caller to try again later;
- the batch refused for its content (a value too long or not encodable): the events
  are written one per transaction, and only the refused ones are dropped, each with a
  logged error; the mark is then set on its own.

Like ``rows.py``, this imports only the standard library at run time (not ``logging``,
which only a refused event needs).
"""

from __future__ import annotations

import sqlite3
import sys

from riverrun.db.rows import TASK_RUN_LATEST_POSITIONS, Batch, apply_batch, set_writer_mark

TYPE_CHECKING = False  # ``typing`` is not imported at run time; mypy takes this as True
if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable
    from typing import Any, Protocol

    from riverrun.db.statements import Database

    class Write(Protocol):
        """Commits ``events`` in one transaction, with ``mark`` if given (as
        ``write_events`` does: the store's hook on it is ``EmbeddedStore._write``)."""

        def __call__(
            self, events: list[tuple[Any, ...]], mark: tuple[str, int] | None = ..., /
        ) -> None: ...


__all__ = [
    "LOG",
    "STATE",
    "TASK_RUN",
    "commit_queued",
    "events_batch",
    "first_line",
    "unavailable_errors",
    "write_events",
]

# Event tags (an event's first item).
TASK_RUN, STATE, LOG = 0, 1, 2


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """The errors meaning "the database cannot be reached or used right now": retry
    later. SQLAlchemy's are among them once something imported it (never on SQLite's
    run path, which uses ``sqlite3``)."""
    errors: tuple[type[BaseException], ...] = (
        sqlite3.OperationalError,
        sqlite3.InterfaceError,
        TimeoutError,
    )
    exc = sys.modules.get("sqlalchemy.exc")
    if exc is not None:
        errors += (exc.OperationalError, exc.InterfaceError)
    return errors


def first_line(error: BaseException) -> str:
    """The first line of what ``error`` (or the driver's error under SQLAlchemy's) says."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__


def _text(value: str | None) -> str | None:
    # Text from a program can hold lone surrogates (undecodable file names) that no
    # database encoding accepts; store a replacement character instead of failing.
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def _latest_setter() -> Callable[[list[Any], tuple[Any, ...]], None]:
    """A function putting a task run's latest columns (``TASK_RUN_LATEST`` order) in
    place in its row: one assignment to the row's positions, written out once
    (``row[5], row[6], ... = latest``), where a loop over the positions cost a
    microsecond per state. The source is made from this package's own positions."""
    targets = ", ".join(f"row[{position}]" for position in TASK_RUN_LATEST_POSITIONS)
    namespace: dict[str, Any] = {}
    exec(f"def set_latest(row, latest):\n    {targets} = latest\n", namespace)
    return namespace["set_latest"]  # type: ignore[no-any-return]


_set_latest = _latest_setter()


def events_batch(events: list[tuple[Any, ...]]) -> Batch:
    """Turn queued events into rows; a task run created in this batch gets its latest
    state columns in its INSERT instead of a separate UPDATE."""
    batch = Batch.empty()
    created: dict[str, list[Any]] = {}
    for event in events:
        tag = event[0]
        if tag == TASK_RUN:
            task_row = list(event[1])
            batch.task_runs.append(task_row)
            created[task_row[0]] = task_row
            if event[2] is not None:
                batch.states.append(event[2])
        elif tag == STATE:
            kind, run_id, state_type, name, message, timestamp = event[1:7]
            message = _text(message)
            batch.states.append((run_id, kind, state_type, name, message, timestamp))
            latest = (state_type, name, message, *event[7:])  # run count, start, end...
            if kind != "task":
                batch.flow_run_updates[run_id] = latest
                continue
            new_row = created.get(run_id)
            if new_row is None:
                batch.task_run_updates[run_id] = latest
            else:
                _set_latest(new_row, latest)
        else:
            _, flow_run_id, task_run_id, level, logger_name, text, timestamp = event
            logger_name, text = _text(logger_name), _text(text)
            batch.logs.append((flow_run_id, task_run_id, level, logger_name, text, timestamp))
    return batch


def commit_queued(
    queue: deque[tuple[Any, ...]], write: Write, mark: tuple[str, int] | None = None
) -> int:
    """Commit every event of ``queue`` (taken from it) and ``mark`` (writer key, batch
    number) through ``write``, as the module's docstring says; how many events were
    taken.

    Raises:
        The database's error when it is unavailable (``unavailable_errors``), or any
        ``BaseException`` but an ``Exception``: the events not committed are back at
        the head of ``queue``.
    """
    count = len(queue)
    if not count and mark is None:
        return 0
    events = [queue.popleft() for _ in range(count)]
    try:
        if mark is None:
            write(events)
        else:
            write(events, mark)
    except unavailable_errors():
        queue.extendleft(reversed(events))
        raise
    except Exception:
        _write_one_by_one(events, write, queue)
        if mark is not None:
            write([], mark)
    except BaseException:
        queue.extendleft(reversed(events))
        raise
    return count


def write_events(
    database: Database, events: list[tuple[Any, ...]], mark: tuple[str, int] | None = None
) -> None:
    """Commit ``events`` in one transaction, with ``mark`` if given."""
    batch = events_batch(events)
    with database.write() as driver:
        apply_batch(driver, batch)
        if mark is not None:
            set_writer_mark(driver, *mark)


def _write_one_by_one(
    events: list[tuple[Any, ...]], write: Write, queue: deque[tuple[Any, ...]]
) -> None:
    for position, event in enumerate(events):
        try:
            write([event])
        except unavailable_errors():
            queue.extendleft(reversed(events[position:]))
            raise
        except Exception:
            # Imported here: a writer process needs logging only for this.
            import logging

            logging.getLogger(__name__).exception(
                "Dropped a run-history event the database refused: %r", event
            )
