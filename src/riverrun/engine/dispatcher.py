"""One thread per process that starts waiting task runs and receives remote results.

Callbacks of futures run on whatever thread finished the future: a pool worker, a
process pool's manager thread (which must never block: it is the only reader of the
pipe its ``submit`` writes to), Dask's callback thread. Starting a dependent run or
recording a remote run's events there could block those threads or, along a chain of
runs, recurse once per link. So callbacks only hand their work to this queue, and one
daemon thread does it, in order.

Also here: resolving a run's future from such work, where the flow may have cancelled
it meanwhile (it ended), so resolving must not raise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any, TypeVar

__all__ = ["cancel_with", "dispatch", "set_exception", "set_result"]

T = TypeVar("T")

logger = logging.getLogger("riverrun.engine")

_queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_lock = threading.Lock()


def dispatch(work: Callable[[], None]) -> None:
    """Run ``work`` soon on the dispatcher thread (it must not raise; it is logged)."""
    if _thread is None:
        _start()
    _queue.put(work)


def set_result(future: Future[T], value: T) -> None:
    """Resolve ``future`` unless it was cancelled meanwhile (the flow ended)."""
    with contextlib.suppress(InvalidStateError):
        future.set_result(value)


def set_exception(future: Future[T], error: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):
        future.set_exception(error)


def cancel_with(result: Future[T], inner: Future[Any]) -> None:
    """Cancelling ``result`` (the flow ended) cancels ``inner`` if it has not started."""
    result.add_done_callback(lambda done: inner.cancel() if done.cancelled() else None)


def _start() -> None:
    global _thread
    with _lock:
        if _thread is None:
            thread = threading.Thread(target=_serve, name="riverrun-dispatch", daemon=True)
            thread.start()
            _thread = thread


def _serve() -> None:
    while True:
        work = _queue.get()
        try:
            work()
        except BaseException:
            logger.exception("riverrun's dispatcher could not finish a task run's start")


def _after_fork_in_child() -> None:
    # The parent's thread and queued work are not the child's.
    global _queue, _thread, _lock
    _queue = queue.SimpleQueue()
    _thread = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
