"""The thread pool behind ``ThreadPoolTaskRunner``.

It keeps the contract of ``concurrent.futures.ThreadPoolExecutor`` that the runner
relies on, with less work per call: a submitted call is one tuple on a queue (no work
item object) and a worker found idle is claimed under a plain lock (no semaphore).

Invariants:
- Threads start only when no idle worker can be claimed, up to ``max_workers``; a worker
  counts itself idle again after each call, so every claim matches one idle worker.
- ``shutdown`` lets every queued call run first (the stop markers queue behind them);
  a ``submit`` after it raises ``RuntimeError``, so no call is left queued for nobody.
- At interpreter exit, before non-daemon threads are joined (as ``ThreadPoolExecutor``
  does), every pool is shut down and its queued and running calls finish.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from queue import SimpleQueue
from typing import Any, TypeVar

__all__ = ["ThreadPool"]

T = TypeVar("T")

_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]

_pools: weakref.WeakSet[ThreadPool] = weakref.WeakSet()
_exiting = False


class ThreadPool:
    """Runs calls on up to ``max_workers`` threads named ``{prefix}_{n}``."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._queue: SimpleQueue[_Item | None] = SimpleQueue()
        self._lock = threading.Lock()  # submit, thread starts and shutdown
        self._threads: list[threading.Thread] = []
        # Workers waiting for a call and not yet claimed by a submit. Its own lock: a
        # worker counting itself idle must not wait for a submit starting a thread.
        self._idle_lock = threading.Lock()
        self._idle = 0
        self._shutdown = False
        _pools.add(self)

    def qsize(self) -> int:
        """How many calls wait for a worker."""
        return self._queue.qsize()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on a worker; its outcome lands in the future returned.

        Raises:
            RuntimeError: the pool is shut down (or the interpreter is exiting).
        """
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown or _exiting:
                raise RuntimeError("cannot schedule new calls after the pool is shut down")
            self._queue.put((future, fn, args))
            with self._idle_lock:
                claimed = self._idle > 0
                if claimed:
                    self._idle -= 1
            if not claimed and len(self._threads) < self._max_workers:
                self._start_worker()
        return future

    def _start_worker(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        queue, lock = self._queue, self._idle_lock
        while True:
            item = queue.get()
            if item is None:
                return
            future, fn, args = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as error:
                    future.set_exception(error)
                    del error
                else:
                    future.set_result(result)
                    del result
            # Drop the references before waiting: the call's arguments and result
            # belong to its future alone.
            del future, fn, args
            with lock:
                self._idle += 1

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers once the queued calls have run; with ``wait``, block until
        they have."""
        with self._lock:
            if not self._shutdown:
                self._shutdown = True
                for _ in self._threads:
                    self._queue.put(None)
            threads = list(self._threads)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


def _at_exit() -> None:
    global _exiting
    _exiting = True
    for pool in list(_pools):
        pool.shutdown(wait=True)


# Run by threading before it joins non-daemon threads, as ThreadPoolExecutor's own hook.
threading._register_atexit(_at_exit)  # type: ignore[attr-defined]
