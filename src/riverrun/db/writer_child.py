"""The writer process's own side: read batches of write-behind events from the parent,
commit them, confirm them (the protocol and guarantees are in ``store/writer.py``).

It lives outside ``riverrun.store`` so that importing it does not run
``store/__init__.py`` (settings, the store protocol: ``dataclasses``, ``inspect``...),
and for a SQLite file it imports only the standard library and ``rows``,
``write_behind`` and ``sqlite`` of this package, the writer's start-up being time the
runs' events wait for. Another database (PostgreSQL) goes through a SQLAlchemy engine,
which it imports as the store does; the commit itself is ``write_behind``'s either way.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import gc
import marshal
import os
import select
import struct
import sys
import time

from riverrun.db.write_behind import commit_queued, first_line, write_events

TYPE_CHECKING = False  # ``typing`` is not imported at run time; mypy takes this as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

    from riverrun.db.statements import Database
    from riverrun.db.write_behind import Write

__all__ = [
    "ACK",
    "FRAME",
    "MARSHAL",
    "WRITERS_FOLDER",
    "host_name",
    "lock_name",
    "main",
]

#: A frame's header (parent → writer): the length of what follows.
FRAME = struct.Struct("<I")
#: An answer's header (writer → parent): the batch number, the length of its text.
ACK = struct.Struct("<QI")
#: The encoding byte of a marshal frame (any other: pickle).
MARSHAL = ord("m")
# Batches waiting in the pipe are committed together, up to this many events.
_COALESCE_EVENTS = 5_000
# The writer collects reference cycles once per this many transactions (see main).
_COLLECT_EVERY = 100
#: The folder of ``<home>`` holding the writers' lock files.
WRITERS_FOLDER = "writers"


def host_name() -> str:
    """This host's name, as ``socket.gethostname`` gives it on POSIX (both read
    ``uname``'s node name), without importing ``socket``."""
    return os.uname().nodename


def lock_name(parent: int) -> str:
    """The name of the lock file the writer of process ``parent`` holds."""
    return f"{host_name()}-{parent}.lock"


_END = object()


class _Frames:
    """Frames from the parent, read straight from the pipe (so that "is another batch
    already waiting?" has an honest answer)."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self._buffer = bytearray()
        self._ended = False

    def next(self, *, block: bool = True) -> Any:
        """The next frame's object; ``_END`` at the end of the stream, or (when not
        blocking) when no whole frame is waiting."""
        while True:
            if len(self._buffer) >= FRAME.size:
                (length,) = FRAME.unpack_from(self._buffer)
                end = FRAME.size + length
                if len(self._buffer) >= end:
                    data = memoryview(self._buffer)[FRAME.size + 1 : end]
                    if self._buffer[FRAME.size] == MARSHAL:
                        payload = marshal.loads(data)
                    else:
                        import pickle  # rare (see store/writer.py's _plain): not at start

                        payload = pickle.loads(data)
                    data.release()
                    del self._buffer[:end]
                    return payload
            # A frame cut short by the parent's death was never confirmed: dropped.
            if self._ended:
                return _END
            if not block and not select.select([self._descriptor], [], [], 0)[0]:
                return _END
            chunk = os.read(self._descriptor, 1 << 20)
            if not chunk:
                self._ended = True
            self._buffer += chunk


class _Answers:
    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._open = True

    def send(self, seq: int, text: str = "") -> None:
        if not self._open:
            return
        data = text.encode("utf-8", "replace")
        try:
            self._stream.write(ACK.pack(seq, len(data)) + data)
            self._stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._open = False  # the parent is gone: go on committing what came


def _ignore_sigint() -> None:
    try:
        # The C half of ``signal``: the module itself imports ``enum`` for its constants,
        # which nothing else here needs (a tenth of this process's imports).
        import _signal as signals  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        import signal as signals
    signals.signal(signals.SIGINT, signals.SIG_IGN)


def _hold_lock(home: str, parent: int) -> tuple[str, int]:
    folder = os.path.join(home, WRITERS_FOLDER)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, lock_name(parent))
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return path, descriptor


def _open(url: str) -> tuple[Database, Callable[[], None]]:
    """The database at ``url`` (its schema brought to the head, as the parent's store
    does) and what closes it."""
    from riverrun.db.sqlite import SQLiteDatabase, sqlite_path

    path = sqlite_path(url)
    if path is not None:
        sqlite_db = SQLiteDatabase(path)
        sqlite_db.migrate(url)
        return sqlite_db, sqlite_db.dispose
    from riverrun.db.engine import create_db_engine, migrate
    from riverrun.db.repository import EngineDatabase

    engine = create_db_engine(url)
    migrate(engine)
    return EngineDatabase(engine), engine.dispose


def _commit(
    write: Write,
    queue: collections.deque[tuple[Any, ...]],
    mark: tuple[str, int],
    seqs: list[int],
    parent: int,
    answer: _Answers,
    give_up_after: float,
) -> None:
    """Commit the events of ``queue`` in one transaction with this writer's mark
    (``mark``: its key, the last batch number), trying again while the database is
    unavailable (for at most ``give_up_after`` seconds once the parent is gone)."""
    given_up_at: float | None = None
    delay = 0.05
    while True:
        try:
            commit_queued(queue, write, mark)
            return
        except Exception as error:  # the events not committed are in the queue still
            # Said at every attempt: a parent that starts waiting later hears it too.
            text = first_line(error)
            for seq in seqs:
                answer.send(seq, text)
            if os.getppid() != parent:
                if given_up_at is None:
                    given_up_at = time.monotonic() + give_up_after
                elif time.monotonic() > given_up_at:
                    print(
                        f"riverrun writer: the process that ran the flows is gone and the "
                        f"database is still unavailable ({text}); {len(queue)} run-history "
                        "event(s) were not recorded",
                        file=sys.stderr,
                        flush=True,
                    )
                    queue.clear()
                    return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def main() -> None:
    """Run the writer process (``store/writer.py``'s bootstrap calls this)."""
    _ignore_sigint()
    frames = _Frames(sys.stdin.fileno())
    answer = _Answers(sys.stdout.buffer)
    parent = os.getppid()
    first = frames.next()
    if first is _END:
        return
    url, home, key, give_up_after = first
    lock_path, lock = _hold_lock(home, parent)
    try:
        database, close = _open(url)

        def write(events: list[tuple[Any, ...]], mark: tuple[str, int] | None = None) -> None:
            write_events(database, events, mark)

        # Each batch makes tens of thousands of short-lived tuples: with automatic
        # collection on, the collector ran over them (and everything imported) many
        # times per batch, a tenth of the writer's time. What the writer's own code
        # makes has no reference cycles; any that a library makes are collected
        # every ``_COLLECT_EVERY`` batches.
        gc.freeze()
        gc.disable()
        # Events of batches not committed yet (kept while the database is unavailable).
        queue: collections.deque[tuple[Any, ...]] = collections.deque()
        batches = 0
        answer.send(0)
        while (frame := frames.next()) is not _END:
            seqs = [frame[0]]
            queue.extend(frame[1])
            # Batches already waiting go in the same transaction.
            while len(queue) < _COALESCE_EVENTS:
                more = frames.next(block=False)
                if more is _END:
                    break
                seqs.append(more[0])
                queue.extend(more[1])
            _commit(write, queue, (key, seqs[-1]), seqs, parent, answer, give_up_after)
            for seq in seqs:
                answer.send(seq)
            del frame
            batches += 1
            if batches % _COLLECT_EVERY == 0:
                gc.collect()
        # The mark stays: the parent removes it once it has heard every confirmation,
        # or reads it if this process stopped before confirming everything.
        close()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(lock)


if __name__ == "__main__":
    main()
