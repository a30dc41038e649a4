"""Run tasks in worker processes, for CPU-bound work across cores."""

from __future__ import annotations

import collections
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from riverrun.engine.dispatcher import dispatch, set_exception, set_result

__all__ = ["ProcessPoolTaskRunner"]

T = TypeVar("T")
_Queued = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class ProcessPoolTaskRunner:
    """Runs each submitted task in a pool of worker processes.

    Workers are started with ``spawn`` (a fresh interpreter; nothing half-copied from the
    flow's threads), so a script using this runner must start its flow under
    ``if __name__ == "__main__":``, as with any ``ProcessPoolExecutor``. Tasks, their
    arguments and their results cross with cloudpickle, so tasks and lambdas defined in
    the script itself work.

    Args:
        max_workers: the number of processes; ``None`` means one per CPU core.
    """

    remote = True

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._workers = max_workers or os.cpu_count() or 1
        self._running = 0
        self._pending: collections.deque[
            tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]
        ] = collections.deque()

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"

    def duplicate(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(self.max_workers)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``fn(*args)``; it is handed to the pool when a worker is free, so a
        run the flow cancels before it starts never starts (the pool itself takes
        work ahead of its workers, where it can no longer be cancelled)."""
        result: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is shut down: its flow run has ended")
            self._pending.append((result, fn, args))
        self._feed()
        return result

    def _feed(self) -> None:
        while True:
            with self._lock:
                if self._closed or not self._pending or self._running >= self._workers:
                    return
                result, fn, args = self._pending.popleft()
                if not result.set_running_or_notify_cancel():
                    continue  # cancelled while queued
                self._running += 1
                if self._executor is None:
                    self._executor = self._new_executor()
                executor = self._executor
            try:
                try:
                    inner = executor.submit(fn, *args)
                except BrokenProcessPool:
                    # A worker died (its run, and those in flight with it, are Crashed):
                    # later runs get a fresh pool.
                    inner = self._replace_broken(executor).submit(fn, *args)
            except BaseException as error:
                with self._lock:
                    self._running -= 1
                result.set_exception(error)
                continue
            inner.add_done_callback(functools.partial(self._finished, result))

    def _replace_broken(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
            assert self._executor is not None
            return self._executor

    def _finished(self, result: Future[Any], inner: Future[Any]) -> None:
        # On the pool's manager thread, which must not block: the next run is handed
        # to the pool from the dispatcher thread.
        with self._lock:
            self._running -= 1
        if inner.cancelled():
            result.cancel()
        elif inner.exception() is not None:
            set_exception(result, inner.exception())  # type: ignore[arg-type]
        else:
            set_result(result, inner.result())
        dispatch(self._feed)

    def _new_executor(self) -> ProcessPoolExecutor:
        import multiprocessing

        return ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self._closed = True
            pending, self._pending = self._pending, collections.deque()
        for result, _, _ in pending:
            result.cancel()
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)
