"""``EmbeddedStore``: runs recorded straight into the local database."""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from riverrun.db import statements, write_behind
from riverrun.db.sqlite import SQLiteDatabase, sqlite_path
from riverrun.db.write_behind import first_line as _first_line
from riverrun.exceptions import ConcurrencyLimitExistsError, StoreUnavailableError
from riverrun.settings import Settings
from riverrun.states import FINAL_TYPES, TYPE_VALUES, State
from riverrun.store.protocol import (
    CacheEntry,
    ConcurrencyLimit,
    FlowRun,
    LogEntry,
    SlotGrant,
    SlotRequest,
    StateRecord,
    TaskRun,
)
from riverrun.store.writer import (
    WriterGone,
    WriterProcess,
    abandoned_marks,
    wait_for_writers,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

__all__ = ["EmbeddedStore"]

logger = logging.getLogger(__name__)


def _database_errors() -> tuple[type[BaseException], ...]:
    """What opening or migrating the database raises when it cannot be used."""
    errors: tuple[type[BaseException], ...] = (sqlite3.Error, ImportError, ValueError)
    exc = sys.modules.get("sqlalchemy.exc")
    return errors if exc is None else (*errors, exc.SQLAlchemyError)


# Event tags in the write-behind queue (see db/write_behind.py).
_TASK_RUN, _STATE, _LOG = write_behind.TASK_RUN, write_behind.STATE, write_behind.LOG
_micros = statements.micros
_CREATED = statements.TASK_RUN_COLUMNS.index("created")
# How long the set of concurrency limit names is trusted before it is read again:
# limits created by another process apply to this one's tagged tasks within this time.
_LIMIT_NAMES_TTL = 2.0
# Wake the flusher early once this many events wait, to bound memory and latency.
_EAGER_FLUSH_AT = 5_000
# The same with a writer process, which commits while this one runs: smaller hand-overs
# keep it busy sooner and leave less for a flow's end to wait for (a whole batch made it
# wait about as long as that batch took to commit).
_EAGER_HANDOVER_AT = 1_000
# Past this many, the thread recording an event writes the queue itself: when runs
# record faster than the database takes them, they slow down instead of the queue
# (and the process's memory) growing without bound.
_HIGH_WATER = 10_000
# The mark while a writer process starts up (about a tenth of a second, in which runs
# record a few ten thousand events), kept for it rather than written here.
_HIGH_WATER_STARTING = 50_000
# With ``RIVERRUN_STORE_WRITER=auto``, a writer process is started once this process has
# recorded this many events (the flusher wakes for it): a process that records this
# much usually goes on to record more, and the writer's start-up (a fresh interpreter,
# on another core) then pays for itself.
_WRITER_AFTER = 500
# How long the flusher keeps events for a new writer process that has not opened the
# database yet (from its start; past that, this process writes them itself until it
# does), and how often it looks meanwhile.
_WRITER_START_WAIT = 5.0
_WRITER_START_POLL = 0.01
# While it starts, the thread recording events also looks whether the writer is ready,
# each time the queue's length is a multiple of 512, this mask plus one (a read of its
# pipe: a system call, so not on every event).
_READY_CHECK_MASK = 511
# How long closing the store waits for a writer process to exit once it confirmed all.
_WRITER_EXIT_WAIT = 10.0


class EmbeddedStore:
    """Records runs in the database at ``settings.database_url``.

    Appends are lock-free (``deque.append`` is atomic); one daemon thread drains the
    queue every ``settings.flush_interval`` seconds. A flush that fails (the database
    unreachable, a disk full) keeps its events at the head of the queue and is tried
    again, so nothing is dropped while the process lives.

    The same thread refreshes, every ``settings.heartbeat_interval`` seconds, the
    heartbeat of each flow run this store created that has not reached a final state.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        # A plain SQLite file is recorded in through sqlite3; SQLAlchemy is imported
        # only for what is off the run path (see db/sqlite.py). Anything else (as
        # PostgreSQL) goes through a SQLAlchemy engine.
        path = sqlite_path(self.url)
        if path is None:
            from riverrun.db.engine import redacted

            self._shown_url = redacted(self.url)
        else:
            self._shown_url = self.url  # no password in a SQLite URL
        self._sa_engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._db: statements.Database
        try:
            if path is not None:
                sqlite_db = SQLiteDatabase(path)
                self._db = sqlite_db
                sqlite_db.migrate(self.url)
            else:
                from riverrun.db.engine import create_db_engine, migrate
                from riverrun.db.repository import EngineDatabase

                self._sa_engine = create_db_engine(self.url)
                self._db = EngineDatabase(self._sa_engine)
                migrate(self._sa_engine)
        except _database_errors() as error:
            raise StoreUnavailableError(self._shown_url, _first_line(error)) from error
        self._settings = settings
        self._interval = settings.flush_interval
        self._heartbeat_interval = settings.heartbeat_interval
        # Flow runs this process is running: the ones it heartbeats.
        self._live: set[str] = set()
        self._live_lock = threading.Lock()
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._write_through = False
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        # (monotonic time read, names) of the concurrency limits; None: not read yet.
        self._limit_names: tuple[float, frozenset[str]] | None = None
        # The writer process, once started (see writer.py); events this process wrote.
        self._writer: WriterProcess | None = None
        self._writer_mode = settings.store_writer
        # Queued events that wake the flusher early (see _enqueue).
        self._eager_at = _WRITER_AFTER if self._writer_mode == "auto" else _EAGER_FLUSH_AT
        self._written = 0
        atexit.register(self.close)

    def __repr__(self) -> str:
        return f"EmbeddedStore({self._shown_url!r})"

    @property
    def _engine(self) -> Engine:
        """The SQLAlchemy engine, for what is off the run path (opened on first use)."""
        engine = self._sa_engine
        if engine is None:
            with self._engine_lock:
                engine = self._sa_engine
                if engine is None:
                    from riverrun.db.engine import create_db_engine

                    engine = self._sa_engine = create_db_engine(self.url)
        return engine

    @contextmanager
    def _read_connection(self) -> Iterator[Connection]:
        from riverrun.db.engine import read_connection

        with read_connection(self._engine) as connection:
            yield connection

    # -- synchronous writes -------------------------------------------------------

    def create_flow_run(self, run: FlowRun) -> None:
        now = datetime.now(UTC)
        if run.created is None:
            run.created = now
        if run.heartbeat is None:
            # Now rather than ``created``: a run recorded late (a subflow reported back
            # by a worker) must not look silent from the start.
            run.heartbeat = now
        with self._db.write() as driver:
            statements.insert_flow_run(driver, run)
        if run.state is None or run.state.type not in FINAL_TYPES:
            with self._live_lock:
                self._live.add(run.id)
            if self._thread is None:
                self._start_flusher()  # also in a forked child: it heartbeats its runs

    def write_cache_entry(self, entry: CacheEntry) -> None:
        with self._db.write() as driver:
            statements.upsert_cache_entry(driver, entry)

    def delete_cache_entries(
        self, *, task_name: str | None = None, key: str | None = None
    ) -> list[CacheEntry]:
        from riverrun.db import repository

        with self._engine.begin() as connection:
            return repository.delete_cache_entries(connection, task_name=task_name, key=key)

    def restart_flow_run(self, run: FlowRun, state: State) -> bool:
        self.flush()  # the run's own earlier events first
        run.heartbeat = datetime.now(UTC)
        with self._db.write() as driver:
            moved = statements.restart_flow_run(driver, run, state)
        if moved:
            run.state = state
            run.end_time = None
            with self._live_lock:
                self._live.add(run.id)
            if self._thread is None:
                self._start_flusher()
        return moved

    # -- write-behind ---------------------------------------------------------------

    def record_task_run(self, run: TaskRun) -> None:
        row = statements.task_run_values(run)
        state = run.state
        first = None
        if state is not None:
            # A run created at its first state's time (the engine's): converted once.
            at = row[_CREATED] if state.timestamp is run.created else None
            first = statements.state_values(run.id, "task", state, at)
        self._enqueue((_TASK_RUN, row, first))

    def set_state(self, run: FlowRun | TaskRun, state: State) -> None:
        # The state without its data (a result must not live on in a queue), and the
        # run's columns as they stand after it (for a task run also its result
        # reference and cache key, known once it started).
        is_task = type(run) is TaskRun
        if not is_task and state.type in FINAL_TYPES:
            with self._live_lock:
                self._live.discard(run.id)
        # The run's start or end is often this state's own time: converted once.
        at, start, end = state.timestamp, run.start_time, run.end_time
        micros = _micros(at)
        event: tuple[Any, ...] = (
            _STATE,
            "task" if is_task else "flow",
            run.id,
            TYPE_VALUES[state.type],
            state.name,
            state.message,
            micros,
            run.run_count,
            micros if start is at else _micros(start),
            micros if end is at else _micros(end),
        )
        if is_task:
            event += (run.result, run.cache_key)  # type: ignore[union-attr]
        self._enqueue(event)

    def record_log(self, entry: LogEntry) -> None:
        self._enqueue(
            (
                _LOG,
                entry.flow_run_id,
                entry.task_run_id,
                entry.level,
                entry.logger,
                entry.message,
                _micros(entry.timestamp),
            )
        )

    def record_log_line(
        self,
        flow_run_id: str | None,
        task_run_id: str | None,
        level: int,
        logger: str,
        message: str,
        created: float,
    ) -> None:
        self._enqueue(
            (_LOG, flow_run_id, task_run_id, level, logger, message, round(created * 1_000_000))
        )

    def _enqueue(self, event: tuple[Any, ...]) -> None:
        self._queue.append(event)
        if self._write_through:
            self.flush()
            return
        if self._thread is None:
            self._start_flusher()
        waiting = len(self._queue)
        if waiting >= self._eager_at and not self._wake.is_set():
            if self._writer is None and self._writer_mode == "auto":
                self._start_writer_here()
            self._wake.set()
        if waiting >= _HIGH_WATER and (waiting >= _HIGH_WATER_STARTING or not self._starting()):
            with contextlib.suppress(Exception):  # unavailable: kept, the flusher retries
                self._drain()
        elif not waiting & _READY_CHECK_MASK and self._starting():
            self._hand_over_if_ready()

    def _hand_over_if_ready(self) -> None:
        """Hand the queue to a writer that has just become ready, from the thread
        recording events. The flusher also looks, every 10 ms, but a busy recording
        thread then keeps it waiting for the interpreter lock; and once the runs record
        faster than the writer commits, each millisecond the writer waits is one the
        flow's end waits too. Skipped when the flusher holds the flush lock."""
        if not self._flush_lock.acquire(blocking=False):
            return
        try:
            # As the flusher drains: still starting, the queue is kept for the writer.
            with contextlib.suppress(Exception):  # unavailable: kept, the flusher retries
                self._drain_locked(may_defer=True)
        finally:
            self._flush_lock.release()

    def _start_writer_here(self) -> None:
        """Start the writer process from the thread recording this event (a spawn: less
        than a millisecond) rather than from the flusher, which the busy recording
        thread would leave waiting for the interpreter lock for up to its switch
        interval (5 ms, during which the writer's backlog grows). Skipped when the
        flusher holds the flush lock: it is at work and starts the writer itself."""
        if not self._flush_lock.acquire(blocking=False):
            return
        try:
            if self._writer is None and self._wants_writer():
                self._start_writer()
        finally:
            self._flush_lock.release()

    def _starting(self) -> bool:
        """Whether a writer process is starting up (read without the flush lock: at
        worst the high water mark is judged one event late)."""
        writer = self._writer
        return writer is not None and writer.starting(_WRITER_START_WAIT)

    def _start_flusher(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._flush_forever, name="riverrun-store-flush", daemon=True
                )
                self._thread.start()

    def _flush_forever(self) -> None:
        next_beat = time.monotonic() + self._heartbeat_interval
        while not self._closed:
            self._wake.wait(min(self._interval, max(next_beat - time.monotonic(), 0.0)))
            self._wake.clear()
            try:
                if self._drain(may_defer=True):
                    time.sleep(_WRITER_START_POLL)  # a writer is starting: look again soon
                if time.monotonic() >= next_beat:
                    self._beat()
                    next_beat = time.monotonic() + self._heartbeat_interval
            except Exception:
                logger.exception("Could not record runs in %s; will retry", self._shown_url)
                time.sleep(min(self._interval * 5, 2.0))

    def flush(self) -> None:
        """Commit every queued event; when this returns, they are in the database.

        Without a writer process the events are written here, in one transaction. When
        the database is unavailable they go back to the head of the queue and the error
        is raised (the flusher retries). When the batch is refused for its content (a
        value too long or not encodable), the events are written one at a time so that
        only the bad ones are dropped, each with a logged error.

        With a writer process they are handed to it, and this waits for it to confirm
        them (``StoreUnavailableError`` when it reports the database unavailable: it
        keeps them and tries again).
        """
        with self._flush_lock:
            self._drain_locked()
            writer = self._writer
            if writer is None:
                return
            try:
                writer.wait()
            except WriterGone:
                self._writer_gone(writer)
                self._write_queued()

    def _drain(self, *, may_defer: bool = False) -> bool:
        """Send the queued events on their way without waiting for a writer process.

        With ``may_defer`` (the flusher thread), while a new writer process is starting
        up (a fresh interpreter: about a tenth of a second) the events are kept for it
        and True is returned: writing them here meanwhile would take the interpreter
        lock from the runs for most of that time. A flush, or a queue past its high
        water mark, writes them here instead.
        """
        with self._flush_lock:
            return self._drain_locked(may_defer=may_defer)

    def _drain_locked(self, *, may_defer: bool = False) -> bool:
        writer = self._writer
        if writer is not None:
            try:
                writer.poll()
                count = len(self._queue)
                if not count:
                    return False
                if writer.ready:
                    writer.send([self._queue.popleft() for _ in range(count)])
                    return False
                if may_defer and writer.starting(_WRITER_START_WAIT):
                    return True
            except WriterGone:
                self._writer_gone(writer)
        elif self._queue and self._wants_writer():
            self._start_writer()
            if may_defer and self._writer is not None:
                return True
        # Until the writer has opened the database, this process writes.
        self._write_queued()
        return False

    def _write_queued(self) -> None:
        """Commit the queued events here (see ``write_behind.commit_queued``: when the
        database is unavailable they stay queued and the error is raised)."""
        self._written += write_behind.commit_queued(self._queue, self._write)

    def _write(self, events: list[tuple[Any, ...]], mark: tuple[str, int] | None = None) -> None:
        # Every transaction of write-behind events committed here goes through this.
        write_behind.write_events(self._db, events, mark)

    def _forget_writer_mark(self, key: str) -> None:
        """Remove a writer's mark once nobody needs it (best effort: a leftover mark
        is a row of two values)."""
        with contextlib.suppress(Exception), self._db.write() as driver:
            statements.take_writer_mark(driver, key)

    # -- the writer process ----------------------------------------------------------

    def _wants_writer(self) -> bool:
        mode = self._writer_mode
        if mode == "thread" or self._closed or not sys.executable:
            return False
        return mode == "process" or self._written + len(self._queue) >= _WRITER_AFTER

    def _start_writer(self) -> None:
        try:
            self._writer = WriterProcess(self._settings, self._shown_url)
            self._eager_at = _EAGER_HANDOVER_AT
        except (OSError, WriterGone) as error:
            logger.warning("Could not start a writer process (%s); writing in this process", error)
            self._writer_mode = "thread"
            self._eager_at = _EAGER_FLUSH_AT

    def _writer_gone(self, writer: WriterProcess) -> None:
        """The writer stopped: take back what it had not committed, in order, and write
        everything here from now on."""
        self._writer = None
        self._writer_mode = "thread"
        self._eager_at = _EAGER_FLUSH_AT
        writer.stop()  # it must not commit anything once its mark has been read
        batches = writer.take_unacked()
        committed = self._committed_by(writer)
        events = [
            event
            for seq, batch in batches
            if committed is None or seq > committed
            for event in batch
        ]
        logger.warning(
            "The run-history writer process (pid %d) stopped (exit status %s); this "
            "process writes its %d uncommitted event(s) and the rest itself",
            writer.pid,
            writer.exit_status(),
            len(events),
        )
        self._queue.extendleft(reversed(events))

    def _committed_by(self, writer: WriterProcess) -> int | None:
        """The last batch a stopped writer committed (from its mark), or None if it
        committed none or the database cannot tell now."""
        try:
            with self._db.write() as driver:
                return statements.take_writer_mark(driver, writer.key)
        except Exception as error:
            logger.warning(
                "Could not read what the writer process committed (%s); its unconfirmed "
                "events are written again and some may be recorded twice",
                _first_line(error),
            )
            return None

    def _remove_abandoned_marks(self, process_alive: Any) -> None:
        """Remove the writer marks of dead processes of this host (best effort: a
        leftover mark is a row of two values)."""
        try:
            with self._db.write() as driver:
                gone = abandoned_marks(statements.writer_mark_names(driver), process_alive)
                if gone:
                    statements.remove_writer_marks(driver, gone)
        except Exception as error:
            logger.warning("Could not remove the writer marks of dead processes (%s)", error)

    def _beat(self) -> None:
        with self._live_lock:
            live = list(self._live)
        if live:
            with self._db.write() as driver:
                statements.update_heartbeats(driver, live, datetime.now(UTC))

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child: the queued events are the parent's to write,
        and the parent's connections and flusher thread are not the child's. What the
        child records goes through its own connections and thread."""
        self._queue.clear()
        if isinstance(self._db, SQLiteDatabase):
            self._db.after_fork_in_child()
        if self._sa_engine is not None:
            self._sa_engine.dispose(close=False)
        # The parent's runs are the parent's to heartbeat: were the child to, a parent
        # killed while its child lives would never look crashed.
        self._live = set()
        self._live_lock = threading.Lock()
        # Forked workers often end by os._exit or SIGTERM (multiprocessing pools), with
        # no chance to flush: in a child every event is committed as it comes.
        self._write_through = True
        if self._writer is not None:
            self._writer.abandon_in_child()
            self._writer = None
        self._writer_mode = "thread"
        self._eager_at = _EAGER_FLUSH_AT
        self._flush_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None

    def close(self) -> None:
        """Flush what is queued and release the database connections."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        try:
            self.flush()
        finally:
            atexit.unregister(self.close)
            writer = self._writer
            if writer is not None:
                writer.close(timeout=_WRITER_EXIT_WAIT)
                self._forget_writer_mark(writer.key)
                self._writer = None
            if isinstance(self._db, SQLiteDatabase):
                self._db.dispose()
            if self._sa_engine is not None:
                self._sa_engine.dispose()

    # -- crash detection ----------------------------------------------------------------

    def mark_crashed_runs(self) -> list[str]:
        """Mark Crashed the unfinished flow runs whose process is gone (see ``RunStore``)."""
        self.flush()  # a final state of ours still queued is not a crash
        # A dead process's writer may still be committing its last events.
        from riverrun.store import crashes

        wait_for_writers(self._settings.home, crashes.process_alive)
        self._remove_abandoned_marks(crashes.process_alive)
        crashed = crashes.mark_crashed_runs(
            self._engine, heartbeat_interval=self._heartbeat_interval
        )
        with self._live_lock:
            self._live.difference_update(crashed)
        return crashed

    # -- reads ------------------------------------------------------------------------

    def read_cache_entry(self, key: str) -> CacheEntry | None:
        with self._db.read() as driver:
            return statements.select_cache_entry(driver, key)

    def read_flow_runs(
        self,
        *,
        limit: int | None = None,
        state_names: list[str] | None = None,
        flow_name: str | None = None,
    ) -> list[FlowRun]:
        from riverrun.db import repository

        self.flush()
        with self._read_connection() as connection:
            return repository.select_flow_runs(
                connection, limit=limit, state_names=state_names, flow_name=flow_name
            )

    def read_flow_run(self, flow_run_id: str) -> FlowRun:
        self.flush()
        with self._db.read() as driver:
            return statements.select_flow_run(driver, flow_run_id)

    def read_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        self.flush()
        with self._db.read() as driver:
            return statements.select_task_runs(driver, flow_run_id)

    def read_states(self, run_id: str) -> list[StateRecord]:
        from riverrun.db import repository

        self.flush()
        with self._read_connection() as connection:
            return repository.select_states(connection, run_id)

    def read_logs(self, flow_run_id: str) -> list[LogEntry]:
        from riverrun.db import repository

        self.flush()
        with self._read_connection() as connection:
            return repository.select_logs(connection, flow_run_id)

    # -- concurrency limits --------------------------------------------------------------

    def create_concurrency_limit(
        self, name: str, limit: int, *, slot_decay_per_second: float = 0.0
    ) -> ConcurrencyLimit:
        from sqlalchemy.exc import IntegrityError

        from riverrun.db import concurrency

        now = datetime.now(UTC)
        try:
            with self._engine.begin() as connection:
                concurrency.insert_limit(connection, name, limit, slot_decay_per_second, now)
        except IntegrityError:
            raise ConcurrencyLimitExistsError(name) from None  # created meanwhile elsewhere
        finally:
            self._limit_names = None
        return self.read_concurrency_limit(name)

    def update_concurrency_limit(
        self, name: str, *, limit: int | None = None, slot_decay_per_second: float | None = None
    ) -> ConcurrencyLimit:
        from riverrun.db import concurrency

        with self._engine.begin() as connection:
            concurrency.update_limit(
                connection, name, datetime.now(UTC), limit=limit, decay=slot_decay_per_second
            )
        return self.read_concurrency_limit(name)

    def delete_concurrency_limit(self, name: str) -> None:
        from riverrun.db import concurrency

        try:
            with self._engine.begin() as connection:
                concurrency.delete_limit(connection, name)
        finally:
            self._limit_names = None

    def reset_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        from riverrun.db import concurrency

        with self._engine.begin() as connection:
            concurrency.reset_limit(connection, name, datetime.now(UTC))
        return self.read_concurrency_limit(name)

    def read_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        from riverrun.db import concurrency
        from riverrun.exceptions import ConcurrencyLimitNotFoundError

        with self._read_connection() as connection:
            found = concurrency.select_limits(connection, datetime.now(UTC), [name])
        if not found:
            raise ConcurrencyLimitNotFoundError(name)
        return found[0]

    def read_concurrency_limits(self) -> list[ConcurrencyLimit]:
        from riverrun.db import concurrency

        with self._read_connection() as connection:
            return concurrency.select_limits(connection, datetime.now(UTC))

    def concurrency_limit_names(self) -> frozenset[str]:
        cached = self._limit_names
        now = time.monotonic()
        if cached is not None and now - cached[0] < _LIMIT_NAMES_TTL:
            return cached[1]
        with self._db.read() as driver:
            names = statements.select_limit_names(driver)
        self._limit_names = (now, names)
        return names

    def acquire_concurrency_slots(self, request: SlotRequest) -> SlotGrant:
        from riverrun.db import concurrency

        with self._engine.begin() as connection:
            grant = concurrency.acquire_slots(connection, request)
        if request.create_if_missing:
            self._limit_names = None
        return grant

    def renew_concurrency_leases(self, lease_ids: list[str], lease_seconds: float) -> list[str]:
        from riverrun.db import concurrency

        expiration = datetime.now(UTC) + timedelta(seconds=lease_seconds)
        with self._engine.begin() as connection:
            return concurrency.renew_leases(connection, lease_ids, expiration)

    def release_concurrency_lease(self, lease_id: str) -> None:
        from riverrun.db import concurrency

        with self._engine.begin() as connection:
            concurrency.delete_lease(connection, lease_id)

    def leave_concurrency_line(self, ticket: int, names: tuple[str, ...]) -> None:
        from riverrun.db import concurrency

        with self._engine.begin() as connection:
            concurrency.delete_waiter(connection, ticket, names)
