"""Task runners: where submitted tasks execute.

A flow run gets its own runner (``duplicate()`` of the one it was decorated with); the
runner starts its workers on the first ``submit`` and is shut down when the run ends,
after every submitted task has finished.

- ``ThreadPoolTaskRunner`` (the default) runs tasks on threads of the flow's process.
- ``ProcessPoolTaskRunner`` runs them in worker processes (CPU-bound work).
- ``riverrun.dask.DaskTaskRunner`` (``pip install riverrun[dask]``) runs them on a
  Dask cluster, local or remote.

A *remote* runner (processes, Dask) receives each task run as one serialised call of
``riverrun.engine.remote.execute_remote``; the task's states and log lines come back
with its result and are recorded by the flow's process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    # Imported when the first task is submitted, not with riverrun.
    from concurrent.futures import Future

    from riverrun.task_runners.pool import ThreadPool
    from riverrun.task_runners.process import ProcessPoolTaskRunner

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner", "default_task_runner"]

T = TypeVar("T")
_DEFAULT_WORKERS = 32
_THREAD_PREFIX = "riverrun-task"
# Runs waiting to start beyond which submit() from outside the pool waits for it.
_BACKLOG = 1_000


class TaskRunner(Protocol):
    """Runs submitted callables somewhere and hands back concurrent futures.

    Attributes:
        remote: true when callables run in other processes (they must be picklable).
    """

    @property
    def remote(self) -> bool: ...

    def duplicate(self) -> TaskRunner:
        """A fresh runner with the same configuration, for one flow run."""
        ...

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]: ...

    def shutdown(self, wait: bool = True) -> None: ...


class ThreadPoolTaskRunner:
    """Runs tasks on a pool of threads (the default).

    Args:
        max_workers: the pool's size; ``None`` means 32. Tasks mostly wait on I/O, so
            the pool is wider than the core count; threads start only as needed.
    """

    remote = False

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self._executor: ThreadPool | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"

    def duplicate(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(self.max_workers)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError(f"{self!r} is shut down: its flow run has ended")
                if self._executor is None:
                    from riverrun.task_runners.pool import ThreadPool

                    self._executor = ThreadPool(
                        self.max_workers or _DEFAULT_WORKERS, thread_name_prefix=_THREAD_PREFIX
                    )
                executor = self._executor
        if executor.qsize() > _BACKLOG:
            self._wait_for_backlog(executor)
        return executor.submit(fn, *args)

    @staticmethod
    def _wait_for_backlog(executor: ThreadPool) -> None:
        """Let the pool catch up before queueing more: a flow submitting faster than
        its tasks run would otherwise hold every queued run in memory. Only code
        outside the pool waits; a task submitting from a pool thread never does (it
        could be what the queue is waiting for)."""
        if threading.current_thread().name.startswith(_THREAD_PREFIX):
            return
        while executor.qsize() > _BACKLOG // 2:
            time.sleep(0.001)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self._closed = True
        if executor is not None:
            executor.shutdown(wait=wait)


_default: ThreadPoolTaskRunner | None = None
_default_lock = threading.Lock()


def default_task_runner() -> ThreadPoolTaskRunner:
    """The shared runner for tasks submitted outside any flow."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ThreadPoolTaskRunner()
        return _default


def __getattr__(name: str) -> Any:
    # The process runner is imported on first use, keeping `import riverrun` light.
    if name == "ProcessPoolTaskRunner":
        from riverrun.task_runners.process import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
