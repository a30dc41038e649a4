"""The writer process: commits an embedded store's write-behind events outside the
process running the flows.

A trivial task run costs about as much to write down (a task run, three states, a log
line) as to run, and a flusher thread shares the interpreter lock with the runs. A
child process writing on another core lets the runs go on meanwhile. ``EmbeddedStore``
starts one (``RIVERRUN_STORE_WRITER``) and hands it each flush's events. This module is
the parent's side; the writer's own is ``db/writer_child.py``, which imports only what
committing needs (for a SQLite file: the standard library and ``db/rows.py``,
``db/write_behind.py``, ``db/sqlite.py``), so that it is ready a few tens of
milliseconds after it is started; events recorded meanwhile wait for it.

Protocol, over the child's standard streams:

- parent → writer (its stdin): frames ``<length: u32><encoding: 1 byte><data>``, the
  data a ``marshal`` (``m``: the events are flat tuples of plain values, which marshal
  writes and reads several times faster than pickle; subclasses of ``str``, ``int`` and
  ``float`` are sent as their plain values) or else a ``pickle`` (``p``). The first
  frame holds plain values: ``(database URL, home folder, writer key, give-up
  seconds)``; each later one
  ``(seq, events)``, with ``seq`` counting up from 1.
- writer → parent (its stdout): ``<seq: u64><length: u32><utf-8 text>``. ``seq`` 0 once
  the database is open ("ready"); then each batch's ``seq`` once its transaction has
  committed, with no text; or, while the database cannot be used, the batch's ``seq``
  with the error's first line (the writer keeps the batch and tries again).
- end of the parent's stream (it closed the store, or died): the writer commits what
  it has, trying for up to ``RIVERRUN_WRITER_GIVE_UP_AFTER`` seconds (default 60) while
  the database is unavailable, then reports on its standard error what it could not
  commit, and exits.

Each batch is committed by ``db/write_behind.py``'s ``commit_queued``, as the store
commits its own when it has no writer: one transaction with the writer's mark; kept
and tried again while the database is unavailable; written one event per transaction
when refused for its content, only the refused events dropped (each logged).

What this guarantees:

- Order: batches commit in the order they were sent, after everything the parent
  committed itself before it started the writer.
- Nothing is lost or recorded twice with either process: the parent keeps each batch
  until it is acknowledged, and if the writer dies, writes the ones the writer did not
  commit. Which those are it reads from the writer's mark: each transaction also sets
  ``writer_marks(writer key, last seq)``, so a batch committed just before the writer
  died, unacknowledged, is not written again. The writer finishes what it received
  when the parent dies (``kill -9`` included). It ignores SIGINT and runs in a
  session of its own, so Ctrl-C or a signal to the parent's process group stops the
  runs but not the recording of what they did.
- A parent's crash is declared only after its writer finished: the writer holds an
  exclusive lock on ``<home>/writers/<host>-<parent pid>.lock`` for its whole life, and the
  crash sweep takes that lock before marking the parent's runs (``wait_for_writers``).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import marshal
import os
import pickle
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riverrun.db.sqlite import sqlite_path
from riverrun.db.writer_child import ACK, FRAME, WRITERS_FOLDER, host_name
from riverrun.exceptions import StoreUnavailableError

if TYPE_CHECKING:
    from riverrun.settings import Settings

__all__ = [
    "WriterGone",
    "WriterProcess",
    "abandoned_marks",
    "wait_for_writers",
    "writers_folder",
]

logger = logging.getLogger(__name__)

# How long the crash sweep waits for a dead process's writer to finish.
_SWEEP_WAIT = 30.0


# What the writer's interpreter runs. Only what committing needs is imported there (see
# db/writer_child.py): ``riverrun`` is registered as a bare package over the same folder
# (argv[1]), so that neither its ``__init__`` (flows, tasks, logging) nor the store's
# (settings, the store protocol) runs.
_BOOT = """\
import sys, types
package = types.ModuleType("riverrun")
package.__path__ = [sys.argv[1]]
sys.modules["riverrun"] = package
from riverrun.db.writer_child import main
main()
"""


class WriterGone(Exception):
    """The writer process stopped; its unacknowledged batches are the parent's again."""


def writers_folder(home: Path) -> Path:
    """The folder of the writers' lock files."""
    return home / WRITERS_FOLDER


# -- the parent's side ---------------------------------------------------------------


class WriterProcess:
    """The parent's handle on one writer process.

    Not thread-safe: the store calls it under its flush lock.
    """

    def __init__(self, settings: Settings, url: str) -> None:
        self._url = url  # the database's, password hidden, for messages
        # The writer loads riverrun from where this process did (_BOOT's argument).
        package = str(Path(__file__).resolve().parents[1])
        # Plain descriptors, no file objects: a forked child can let go of them without
        # touching a buffer or its lock (see abandon_in_child).
        to_writer, self._out = os.pipe()
        self._acks, from_writer = os.pipe()
        # -P: the working folder is not put on the module path (a user's ``types.py``
        # there would replace the standard module). -S for a SQLite file: its writer
        # needs only the standard library and riverrun's folder (the bootstrap's
        # argument), not site-packages, whose set-up is a tenth of its start; another
        # database's writer needs its driver from there.
        flags = ["-P", "-S"] if sqlite_path(settings.database_url) is not None else ["-P"]
        try:
            self._process = subprocess.Popen(
                [sys.executable, *flags, "-c", _BOOT, package],
                stdin=to_writer,
                stdout=from_writer,
                start_new_session=True,
            )
        except BaseException:
            os.close(self._out)
            os.close(self._acks)
            raise
        finally:
            os.close(to_writer)
            os.close(from_writer)
        self._started = time.monotonic()
        os.set_blocking(self._acks, False)
        # Names this writer's progress mark in the database (see _commit).
        self.key = f"{host_name()}-{os.getpid()}-{self._process.pid}"
        self._received = bytearray()
        # seq -> events, oldest first: what the writer has not confirmed yet.
        self._unacked: collections.OrderedDict[int, list[Any]] = collections.OrderedDict()
        self._seq = 0
        self._gone = False
        self.ready = False
        # The latest reason the writer gave for not committing (None: none pending).
        self.problem: str | None = None
        # Plain values the writer unmarshals without importing riverrun's settings.
        self._frame(
            (
                settings.database_url,
                str(settings.home),
                self.key,
                settings.writer_give_up_after,
            )
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def send(self, events: list[Any]) -> None:
        """Hand ``events`` to the writer (kept here until it confirms them)."""
        self._seq += 1
        self._unacked[self._seq] = events
        self._frame((self._seq, events))
        self.poll()

    def poll(self) -> None:
        """Take in whatever the writer has said, without waiting."""
        self._read(0.0)

    def starting(self, budget: float) -> bool:
        """Whether the writer has not opened the database yet but may still within
        ``budget`` seconds of its start."""
        return not self.ready and time.monotonic() - self._started < budget

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every batch sent is committed.

        Raises:
            StoreUnavailableError: the writer reported that the database cannot be used
                (it keeps the batches and tries again), or ``timeout`` passed.
            WriterGone: the writer stopped.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self.problem = None
        while self._unacked:
            if self.problem is not None:
                raise StoreUnavailableError(self._url, self.problem)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise StoreUnavailableError(
                    self._url, f"the writer process did not answer within {timeout} s"
                )
            self._read(remaining)

    def take_unacked(self) -> list[tuple[int, list[Any]]]:
        """The batches sent but not confirmed, oldest first, with their numbers (after
        ``WriterGone``; the writer's mark tells which of them it committed)."""
        batches = list(self._unacked.items())
        self._unacked.clear()
        return batches

    def stop(self, timeout: float = 5.0) -> None:
        """Make sure the writer has exited (after ``WriterGone``): killed if it has not
        within ``timeout`` seconds, so that it commits nothing more."""
        self._close_output()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                self._process.kill()
            self._process.wait()

    def close(self, timeout: float) -> None:
        """End the writer's input and wait up to ``timeout`` seconds for it to commit
        what it holds and exit (it goes on by itself if the database is down)."""
        with contextlib.suppress(WriterGone):
            self.poll()
        if not self.ready and not self._unacked:
            # Still starting up, so it holds nothing: stop it rather than wait for it.
            with contextlib.suppress(OSError):
                self._process.kill()
        self._close_output()
        with contextlib.suppress(StoreUnavailableError, WriterGone):
            self.wait(timeout)
        if not self._unacked:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout)
        if self._acks >= 0:
            os.close(self._acks)
            self._acks = -1

    def abandon_in_child(self) -> None:
        """In a forked child: drop this handle without touching the writer (the pipes
        are the parent's; the child must not hold them open or write to them)."""
        self._close_output()
        if self._acks >= 0:
            os.close(self._acks)
            self._acks = -1
        # Popen would wait for a process that is not this child's.
        self._process.returncode = 0
        self._gone = True

    def exit_status(self) -> int | None:
        return self._process.poll()

    # -- internals --------------------------------------------------------------------

    def _close_output(self) -> None:
        if self._out >= 0:
            os.close(self._out)
            self._out = -1

    def _frame(self, payload: Any) -> None:
        try:
            data = b"m" + marshal.dumps(payload)
        except ValueError:  # a value marshal does not take (a str subclass, say)
            try:
                data = b"m" + marshal.dumps(_plain(payload))
            except ValueError:
                data = b"p" + pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(FRAME.pack(len(data)) + data)
        try:
            if self._out < 0:
                raise BrokenPipeError("closed")
            while view:
                view = view[os.write(self._out, view) :]
        except OSError as error:
            self._gone = True
            raise WriterGone(f"the writer process stopped ({error})") from None

    def _read(self, timeout: float | None) -> None:
        if self._gone or self._acks < 0:
            raise WriterGone("the writer process stopped")
        if timeout != 0.0:
            readable, _, _ = select.select([self._acks], [], [], timeout)
            if not readable:
                return
        try:
            chunk = os.read(self._acks, 65536)
        except BlockingIOError:
            return
        except OSError as error:
            self._gone = True
            raise WriterGone(f"the writer process stopped ({error})") from None
        if not chunk:
            self._gone = True
            raise WriterGone("the writer process stopped")
        self._received += chunk
        while len(self._received) >= ACK.size:
            seq, length = ACK.unpack_from(self._received)
            end = ACK.size + length
            if len(self._received) < end:
                break
            text = self._received[ACK.size : end].decode("utf-8", "replace")
            del self._received[:end]
            self._answer(seq, text)

    def _answer(self, seq: int, text: str) -> None:
        if seq == 0:
            self.ready = True
        elif text:
            self.problem = text
        else:
            self.committed(self._unacked.pop(seq, []))

    def committed(self, events: list[Any]) -> None:
        """Called with each batch the writer confirmed (a hook for instrumentation)."""


def _plain(value: Any) -> Any:
    """``value`` with instances of subclasses of ``str``, ``int`` and ``float`` (a user's
    name type, an ``IntEnum``) made plain, containers rebuilt: what marshal takes. The
    writer then never unpickles, so never imports, a user's module."""
    if value is None or type(value) in (str, int, float, bool, bytes):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    return value  # marshal refuses it still: the frame is pickled


def wait_for_writers(home: Path, process_alive: Any) -> None:
    """Wait for the writers of dead processes of this host to finish their work.

    The crash sweep calls this first, so that a dead process's last events are in the
    database before its runs are judged.
    """
    folder = writers_folder(home)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    host = host_name()
    for name in names:
        stem, _, suffix = name.rpartition(".")
        owner_host, _, pid_text = stem.rpartition("-")
        if suffix != "lock" or owner_host != host or not pid_text.isdigit():
            continue
        if process_alive(int(pid_text)):
            continue
        _wait_and_remove(folder / name)


def abandoned_marks(writers: list[str], process_alive: Any) -> list[str]:
    """Which of these writers' marks nobody will read: those of processes of this host
    that are gone (a mark is read only by the process that started its writer, and
    ``wait_for_writers`` has let that writer finish). A process killed with its writer
    running leaves its writer's mark, which the crash sweep removes with this."""
    host = host_name()
    abandoned = []
    for writer in writers:
        parts = writer.rsplit("-", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        parent = parts[1]
        if not process_alive(int(parent)):
            abandoned.append(writer)
    return abandoned


def _wait_and_remove(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return  # the writer finished and removed it meanwhile
    try:
        deadline = time.monotonic() + _SWEEP_WAIT
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    logger.warning("The writer holding %s is still busy; not waiting", path)
                    return
                time.sleep(0.01)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    finally:
        os.close(descriptor)
