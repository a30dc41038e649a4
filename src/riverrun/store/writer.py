"""The writer process: commits an embedded store's write-behind events outside the
process running the flows.

A trivial task run costs about as much to write down (a task run, three states, a log
line) as to run, and a flusher thread shares the interpreter lock with the runs. A
child process writing on another core lets the runs go on meanwhile. ``EmbeddedStore``
starts one (``RIVERRUN_STORE_WRITER``) and hands it each flush's events.

Protocol, over the child's standard streams:

- parent → writer (its stdin): frames ``<length: u32><encoding: 1 byte><data>``, the
  data a ``marshal`` (``m``: the events are flat tuples of plain values, which marshal
  writes and reads several times faster than pickle; subclasses of ``str``, ``int`` and
  ``float`` are sent as their plain values) or else a ``pickle`` (``p``). The
  first frame holds ``(Settings, writer key)``; each later one ``(seq, events)``, with
  ``seq`` counting up from 1.
- writer → parent (its stdout): ``<seq: u64><length: u32><utf-8 text>``. ``seq`` 0 once
  the database is open ("ready"); then each batch's ``seq`` once its transaction has
  committed, with no text; or, while the database cannot be used, the batch's ``seq``
  with the error's first line (the writer keeps the batch and tries again).
- end of the parent's stream (it closed the store, or died): the writer commits what
  it has, trying for up to ``GIVE_UP_AFTER`` seconds while the database is unavailable,
  then exits.

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
  exclusive lock on ``<home>/writers/<parent pid>.lock`` for its whole life, and the
  crash sweep takes that lock before marking the parent's runs (``wait_for_writers``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import gc
import logging
import marshal
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from riverrun.exceptions import StoreUnavailableError

__all__ = ["GIVE_UP_AFTER", "WriterGone", "WriterProcess", "main", "wait_for_writers"]

logger = logging.getLogger(__name__)

_FRAME = struct.Struct("<I")
_ACK = struct.Struct("<QI")
# How long a writer whose parent is gone keeps trying an unavailable database.
GIVE_UP_AFTER = 60.0
# Batches waiting in the pipe are committed together, up to this many events.
_COALESCE_EVENTS = 5_000
# The writer collects reference cycles once per this many transactions (see main).
_COLLECT_EVERY = 100
# How long the crash sweep waits for a dead process's writer to finish.
_SWEEP_WAIT = 30.0


# What the writer's interpreter runs. The package's ``__init__`` (flows, tasks, logging:
# about half the writer's start-up) is not needed here, so ``riverrun`` is registered as
# a bare package over the same folder (argv[1]) before the writer's modules are loaded.
_BOOT = """\
import sys, types
package = types.ModuleType("riverrun")
package.__path__ = [sys.argv[1]]
sys.modules["riverrun"] = package
from riverrun.store.writer import main
main()
"""


class WriterGone(Exception):
    """The writer process stopped; its unacknowledged batches are the parent's again."""


def writers_folder(home: Path) -> Path:
    return home / "writers"


# -- the parent's side ---------------------------------------------------------------


class WriterProcess:
    """The parent's handle on one writer process.

    Not thread-safe: the store calls it under its flush lock.
    """

    def __init__(self, settings: Any, url: str) -> None:
        self._url = url  # the database's, password hidden, for messages
        # The writer loads riverrun from where this process did (_BOOT's argument).
        package = str(Path(__file__).resolve().parents[1])
        # Plain descriptors, no file objects: a forked child can let go of them without
        # touching a buffer or its lock (see abandon_in_child).
        to_writer, self._out = os.pipe()
        self._acks, from_writer = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, package],
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
        self.key = f"{socket.gethostname()}-{os.getpid()}-{self._process.pid}"
        self._received = bytearray()
        # seq -> events, oldest first: what the writer has not confirmed yet.
        self._unacked: collections.OrderedDict[int, list[Any]] = collections.OrderedDict()
        self._seq = 0
        self._gone = False
        self.ready = False
        # The latest reason the writer gave for not committing (None: none pending).
        self.problem: str | None = None
        self._frame((settings, self.key))

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
        view = memoryview(_FRAME.pack(len(data)) + data)
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
        while len(self._received) >= _ACK.size:
            seq, length = _ACK.unpack_from(self._received)
            end = _ACK.size + length
            if len(self._received) < end:
                break
            text = self._received[_ACK.size : end].decode("utf-8", "replace")
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
    host = socket.gethostname()
    for name in names:
        stem, _, suffix = name.rpartition(".")
        owner_host, _, pid_text = stem.rpartition("-")
        if suffix != "lock" or owner_host != host or not pid_text.isdigit():
            continue
        if process_alive(int(pid_text)):
            continue
        _wait_and_remove(folder / name)


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


# -- the writer's side ---------------------------------------------------------------


_END = object()
_MARSHAL = ord("m")


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
            if len(self._buffer) >= _FRAME.size:
                (length,) = _FRAME.unpack_from(self._buffer)
                end = _FRAME.size + length
                if len(self._buffer) >= end:
                    data = memoryview(self._buffer)[_FRAME.size + 1 : end]
                    if self._buffer[_FRAME.size] == _MARSHAL:
                        payload = marshal.loads(data)
                    else:
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
            self._stream.write(_ACK.pack(seq, len(data)) + data)
            self._stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._open = False  # the parent is gone: go on committing what came


def _hold_lock(home: Path, parent: int) -> tuple[Path, int]:
    folder = writers_folder(home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{socket.gethostname()}-{parent}.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return path, descriptor


def _commit(
    store: Any, events: list[Any], parent: int, answer: Any, seqs: list[int], key: str
) -> None:
    """Commit ``events`` in one transaction with this writer's mark (``key``, the last
    batch number), trying again while the database is unavailable (for at most
    ``GIVE_UP_AFTER`` seconds once the parent is gone)."""
    from riverrun.store.embedded import _first_line

    mark = (key, seqs[-1])
    given_up_at: float | None = None
    delay = 0.05
    while True:
        try:
            store.commit_events(events, mark)
            return
        except Exception as error:
            events = []  # the store keeps what it could not commit
            # Said at every attempt: a parent that starts waiting later hears it too.
            text = _first_line(error)
            for seq in seqs:
                answer.send(seq, text)
            if os.getppid() != parent:
                if given_up_at is None:
                    given_up_at = time.monotonic() + GIVE_UP_AFTER
                elif time.monotonic() > given_up_at:
                    lost = store.drop_queued()
                    print(
                        f"riverrun writer: the process that ran the flows is gone and the "
                        f"database is still unavailable ({text}); {lost} run-history "
                        "event(s) were not recorded",
                        file=sys.stderr,
                        flush=True,
                    )
                    return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    frames = _Frames(sys.stdin.fileno())
    answer = _Answers(sys.stdout.buffer)
    parent = os.getppid()
    first = frames.next()
    if first is _END:
        return
    settings, key = first
    from riverrun.store.embedded import EmbeddedStore

    lock_path, lock = _hold_lock(settings.home, parent)
    try:
        store = EmbeddedStore(dataclasses.replace(settings, store_writer="thread"))
        # Each batch makes tens of thousands of short-lived tuples: with automatic
        # collection on, the collector ran over them (and everything imported) many
        # times per batch, a tenth of the writer's time. What the writer's own code
        # makes has no reference cycles; any that a library makes are collected
        # every ``_COLLECT_EVERY`` batches.
        gc.freeze()
        gc.disable()
        batches = 0
        answer.send(0)
        while (frame := frames.next()) is not _END:
            seqs, events = [frame[0]], list(frame[1])
            # Batches already waiting go in the same transaction.
            while len(events) < _COALESCE_EVENTS:
                more = frames.next(block=False)
                if more is _END:
                    break
                seqs.append(more[0])
                events.extend(more[1])
            _commit(store, events, parent, answer, seqs, key)
            for seq in seqs:
                answer.send(seq)
            del frame, events
            batches += 1
            if batches % _COLLECT_EVERY == 0:
                gc.collect()
        # The mark stays: the parent removes it once it has heard every confirmation,
        # or reads it if this process stopped before confirming everything.
        store.close()
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock_path.unlink()
        os.close(lock)


if __name__ == "__main__":
    main()
