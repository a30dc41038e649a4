"""Run loggers, the console format, and ``print`` routed to the run logger.

The console shows ``HH:MM:SS.mmm | LEVEL   | <label> - message`` where the label is the
run (``Flow run 'nimble-falcon'``, ``Task run 'fetch_data'``) or, for engine messages,
the logger name (``riverrun.engine``). Records that belong to a run are also recorded
in the store, so ``riverrun flow-run logs ID`` shows them later.
"""

from __future__ import annotations

import builtins
import collections
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from riverrun.context import flow_run_context, task_run_context
from riverrun.exceptions import MissingContextError
from riverrun.settings import Settings, get_settings

if TYPE_CHECKING:
    from riverrun.store.protocol import RunStore

__all__ = ["RunLogger", "get_run_logger", "setup_logging"]

ROOT = "riverrun"
# How long the console writer lets lines gather before writing them.
_CONSOLE_BATCH_SECONDS = 0.02
_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname_padded)s | %(label)s - %(message)s"
# Line tails (level, label, message) a console formatter keeps made (see RunFormatter.line).
_TAILS_KEPT = 1024
# "000" to "999": a line's milliseconds by lookup (a format spec cost a line more than
# the rest of its clock, on the console's thread, which shares the interpreter lock).
_MILLIS = tuple(f"{number:03d}" for number in range(1000))
_COLOURS = {
    logging.DEBUG: "\x1b[34m",
    logging.INFO: "\x1b[36m",
    logging.WARNING: "\x1b[33m",
    logging.ERROR: "\x1b[31m",
    logging.CRITICAL: "\x1b[1;31m",
}


class RunFormatter(logging.Formatter):
    """The seeds' console format, coloured only when asked."""

    def __init__(self, *, colour: bool) -> None:
        super().__init__(_FORMAT, datefmt="%H:%M:%S")
        self.colour = colour
        # (second, its clock text): made once per second, not per line; one tuple so
        # that threads formatting at once never pair a second with another's text.
        self._clock: tuple[int, str] = (-1, "")
        self._tails: dict[tuple[int, str, str], str] = {}

    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname:<7}"
        if self.colour:
            level = f"{_COLOURS.get(record.levelno, '')}{level}\x1b[0m"
        record.levelname_padded = level
        if not hasattr(record, "label"):
            record.label = record.name
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        # The common line, built directly (same text as the format string gives).
        record.message = record.getMessage()
        label = getattr(record, "label", record.name)
        return self._line(record.created, record.msecs, level, label, record.message)

    def line(self, created: float, levelno: int, label: str, message: str) -> str:
        """The line ``format`` gives for a plain record with these fields."""
        # What follows the clock is the same for every run of a task (``| INFO    |
        # Task run 'add' - Finished in state Completed()``): made once, then looked up.
        key = (levelno, label, message)
        tail = self._tails.get(key)
        if tail is None:
            level = f"{logging.getLevelName(levelno):<7}"
            if self.colour:
                level = f"{_COLOURS.get(levelno, '')}{level}\x1b[0m"
            tail = f" | {level} | {label} - {message}"
            if len(self._tails) >= _TAILS_KEPT:
                self._tails.clear()
            self._tails[key] = tail
        return f"{self._clock_text(created)}.{_MILLIS[int((created - int(created)) * 1000)]}{tail}"

    def _line(self, created: float, msecs: float, level: str, label: str, message: str) -> str:
        return f"{self._clock_text(created)}.{_MILLIS[int(msecs)]} | {level} | {label} - {message}"

    def _clock_text(self, created: float) -> str:
        second = int(created)
        cached_second, clock = self._clock
        if second != cached_second:
            clock = time.strftime("%H:%M:%S", self.converter(created))
            self._clock = (second, clock)
        return clock


_console_handlers: weakref.WeakSet[ConsoleHandler] = weakref.WeakSet()


def _console_after_fork() -> None:
    for handler in list(_console_handlers):
        handler.after_fork_in_child()


os.register_at_fork(after_in_child=_console_after_fork)


# An engine line queued unformatted: (formatter, created, level number, label, message).
_Parts = tuple[RunFormatter, float, int, str, str]


def _text(line: str | _Parts) -> str:
    if isinstance(line, str):
        return line
    formatter, created, levelno, label, message = line
    return formatter.line(created, levelno, label, message)


class ConsoleHandler(logging.Handler):
    """Writes formatted lines to ``sys.stderr`` from a background thread, in batches.

    A write to the terminal is a system call, which costs more than the rest of a task
    run on some machines; so ``emit`` only queues the line and a writer thread writes
    whatever has queued in one call. ``flush()`` (called when a top-level run ends and
    at interpreter exit) writes the rest synchronously, so nothing is left unprinted
    when a flow call returns. Lines are written in the order they were emitted, to
    whatever ``sys.stderr`` is at the time (so redirections are honoured).
    """

    def __init__(self, *, batched: bool = True) -> None:
        super().__init__()
        self.batched = batched
        # Formatted lines, or an engine line's parts (formatted when written: off the
        # thread running the tasks when the writer thread writes them).
        self._lines: collections.deque[str | _Parts] = collections.deque()
        self._pending = threading.Event()
        self._write_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        _console_handlers.add(self)

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child: the parent's writer thread does not exist
        here, and the lines it had queued are the parent's to write. Children (pool
        workers) often leave through ``os._exit``, so they write each line at once."""
        self.batched = False
        self._lines.clear()
        self._pending = threading.Event()
        self._write_lock = threading.Lock()
        self._writer = None

    def createLock(self) -> None:
        # emit() is thread-safe without the handler lock, and a body interrupted by its
        # timeout could otherwise die holding that lock and stall every later log line.
        self.lock = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        self._queued()

    def emit_line(self, created: float, levelno: int, label: str, message: str) -> None:
        """Queue an engine line without a ``LogRecord`` (see ``RunLogger.engine_event``)."""
        formatter = self.formatter
        assert isinstance(formatter, RunFormatter)
        self._lines.append((formatter, created, levelno, label, message))
        self._queued()

    def _queued(self) -> None:
        if not self.batched:
            self.flush()
            return
        if self._writer is None:
            self._start_writer()
        if not self._pending.is_set():
            self._pending.set()

    def _start_writer(self) -> None:
        with self._write_lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_forever, name="riverrun-console", daemon=True
                )
                self._writer.start()

    def _write_forever(self) -> None:
        while True:
            self._pending.wait()
            # Let lines gather for a moment: one write per burst, not one per line,
            # and the thread running tasks is not interrupted for each of them.
            time.sleep(_CONSOLE_BATCH_SECONDS)
            self._pending.clear()
            self.flush()

    def flush(self) -> None:
        with self._write_lock:
            lines = self._lines
            count = len(lines)
            if not count:
                return
            text = "\n".join([_text(lines.popleft()) for _ in range(count)])
            stream = sys.stderr
            try:
                stream.write(text + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass  # stderr closed (a pipe that went away, interpreter shutdown)


class StoreHandler(logging.Handler):
    """Records each log line that belongs to a run in that run's store."""

    def createLock(self) -> None:
        self.lock = None  # record_log() is a thread-safe append; see ConsoleHandler

    def emit(self, record: logging.LogRecord) -> None:
        store: RunStore | None = getattr(record, "store", None)
        if store is None:
            return
        try:
            store.record_log_line(
                getattr(record, "flow_run_id", None),
                getattr(record, "task_run_id", None),
                record.levelno,
                getattr(record, "label", record.name),
                record.getMessage(),
                record.created,
            )
        except Exception:
            self.handleError(record)


class RunLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger bound to one flow or task run (what ``get_run_logger()`` returns)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = kwargs.get("extra")
        kwargs["extra"] = self.extra if extra is None else {**self.extra, **extra}  # type: ignore[dict-item]
        return msg, kwargs

    def engine_event(self, level: int, message: str) -> None:
        """Log a message of the engine's own (no caller lookup, no %-formatting).

        The engine logs at least one line per task run; ``Logger.log`` spends most of
        its time finding the caller's source line, which nobody reads for these.
        """
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        own = _own_handlers
        if own is not None and _only_ours_listen(logger, level, own):
            # Nobody but riverrun's two handlers would see the record: hand them the
            # line directly (a LogRecord and the handler walk cost more than the rest).
            console, _ = own
            extra: Any = self.extra
            label = extra["label"]
            created = time.time()
            console.emit_line(created, level, label, message)
            store = extra["store"]
            if store is not None:
                store.record_log_line(
                    extra["flow_run_id"], extra["task_run_id"], level, label, message, created
                )
            return
        record = logger.makeRecord(logger.name, level, "riverrun", 0, message, (), None)
        if self.extra:
            record.__dict__.update(self.extra)
        logger.handle(record)


# The handlers setup_logging installed, while they are the riverrun logger's only ones.
_own_handlers: tuple[ConsoleHandler, StoreHandler] | None = None


def _only_ours_listen(
    logger: logging.Logger, level: int, own: tuple[ConsoleHandler, StoreHandler]
) -> bool:
    parent = logger.parent
    if logger.handlers or logger.filters or not logger.propagate or parent is None:
        return False
    if parent.name != ROOT or parent.filters or parent.propagate:
        return False
    console, store = own
    handlers = parent.handlers
    return (
        len(handlers) == 2
        and handlers[0] is console
        and handlers[1] is store
        and not console.filters
        and not store.filters
        and console.level <= level
        and store.level <= level
        and isinstance(console.formatter, RunFormatter)
    )


_setup_lock = threading.Lock()
_configured = False


def setup_logging(settings: Settings | None = None) -> None:
    """Install the console and store handlers on the ``riverrun`` logger (once)."""
    global _configured
    if _configured:
        return
    with _setup_lock:
        if _configured:
            return
        settings = settings or get_settings()
        root = logging.getLogger(ROOT)
        root.setLevel(settings.logging_level)
        terminal = sys.stderr.isatty()
        # On a terminal a person reads along: write each line at once, in order with
        # the program's own prints. Elsewhere batch them (see ConsoleHandler).
        console = ConsoleHandler(batched=not terminal)
        colour = not settings.no_color and terminal
        console.setFormatter(RunFormatter(colour=colour))
        store_handler = StoreHandler()
        root.addHandler(console)
        root.addHandler(store_handler)
        global _own_handlers
        _own_handlers = (console, store_handler)
        # Run logs are shown once, by our console handler, not again by the root logger.
        root.propagate = False
        _configured = True


def reset_logging() -> None:
    """Remove riverrun's handlers (for tests that change logging settings)."""
    global _configured, _own_handlers
    with _setup_lock:
        _own_handlers = None
        root = logging.getLogger(ROOT)
        for handler in list(root.handlers):
            if isinstance(handler, ConsoleHandler | StoreHandler):
                handler.flush()
                root.removeHandler(handler)
        root.propagate = True
        _configured = False


def flush_console() -> None:
    """Write every queued console line now (at the end of a top-level run)."""
    for handler in logging.getLogger(ROOT).handlers:
        if isinstance(handler, ConsoleHandler):
            handler.flush()


# The loggers run loggers wrap, by name. ``logging.getLogger`` takes the logging module's
# global lock on every call, which every pool thread starting a task run contended for.
_loggers: dict[str, logging.Logger] = {}


def run_logger(
    name: str, label: str, store: RunStore | None, flow_run_id: str | None, task_run_id: str | None
) -> RunLogger:
    """A logger whose records carry the run's label and ids."""
    logger = _loggers.get(name)
    if logger is None:
        logger = _loggers[name] = logging.getLogger(name)
    return RunLogger(
        logger,
        {
            "label": label,
            "store": store,
            "flow_run_id": flow_run_id,
            "task_run_id": task_run_id,
        },
    )


def get_run_logger() -> RunLogger:
    """The logger of the flow or task run in progress.

    Raises:
        MissingContextError: called outside a flow or task run.
    """
    task_context = task_run_context.get()
    if task_context is not None:
        return task_context.logger
    flow_context = flow_run_context.get()
    if flow_context is not None:
        return flow_context.logger
    raise MissingContextError("get_run_logger() was called outside a flow or task run")


# -- print() routed to the run logger ------------------------------------------------

print_target: ContextVar[RunLogger | None] = ContextVar("riverrun_print_target", default=None)
_original_print = builtins.print
_print_installed = False


def _print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    target = print_target.get()
    if target is None or (file is not None and file is not sys.stdout):
        _original_print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    target.info((" " if sep is None else sep).join(str(arg) for arg in args))


def install_print_hook() -> None:
    """Replace ``builtins.print`` once with a version that honours ``log_prints``.

    The replacement costs one context-variable read per ``print`` and behaves exactly
    like ``print`` wherever no run with ``log_prints=True`` is active.
    """
    global _print_installed
    if not _print_installed:
        builtins.print = _print
        _print_installed = True
