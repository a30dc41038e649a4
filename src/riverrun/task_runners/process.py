"""Run tasks in worker processes, for CPU-bound work across cores."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["ProcessPoolTaskRunner"]

T = TypeVar("T")


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

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"

    def duplicate(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(self.max_workers)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            if self._executor is None:
                import multiprocessing

                self._executor = ProcessPoolExecutor(
                    self.max_workers or os.cpu_count() or 1,
                    mp_context=multiprocessing.get_context("spawn"),
                )
            return self._executor.submit(fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)
