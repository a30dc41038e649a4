"""What the engine knows about the run in progress, kept in context variables.

Context variables follow a call into threads the engine starts (it copies the context)
and into asyncio tasks (which copy it themselves), so a task submitted from a flow sees
that flow's run.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

    from riverrun.flows import Flow
    from riverrun.futures import RiverrunFuture
    from riverrun.logging import RunLogger
    from riverrun.settings import Settings
    from riverrun.states import State
    from riverrun.store.protocol import FlowRun, RunStore, TaskRun
    from riverrun.task_runners import TaskRunner
    from riverrun.tasks import Task

__all__ = [
    "FlowRunContext",
    "TaskRunContext",
    "current_tags",
    "flow_run_context",
    "tags",
    "task_run_context",
]


@dataclass(slots=True, eq=False)
class FlowRunContext:
    """The flow run whose body is executing.

    When the flow can retry, ``completed`` keeps the final state and the arguments of
    every task (and subflow) that completed in this run, keyed by ``(task key, call
    index)``: a retry that makes the same call with equal arguments gets that state back
    instead of running it again. ``counters`` hands out call indexes and is reset for
    each attempt.

    ``futures`` holds the submitted task runs the flow must still look at: those not
    finished yet and those that failed. A completed one is dropped as soon as it
    finishes, so results the user no longer references are freed (``submitted`` still
    counts it). ``flow`` is ``None`` in a process that runs one task of a flow whose
    body runs elsewhere (a process pool or Dask worker).
    """

    flow: Flow[..., Any] | None
    flow_run: FlowRun
    settings: Settings
    store: RunStore
    logger: RunLogger
    log_prints: bool
    is_async: bool
    task_runner: TaskRunner
    reuse_completed: bool = False
    # The event loop an async flow's body runs on (async tasks it submits run there).
    loop: Any = None
    completed: dict[tuple[str, int], tuple[State, dict[str, Any]]] = field(default_factory=dict)
    counters: dict[str, Iterator[int]] = field(default_factory=dict)
    futures: dict[str, RiverrunFuture[Any]] = field(default_factory=dict)
    submitted: int = 0
    unfinished: int = 0
    _idle: Future[None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, future: RiverrunFuture[Any]) -> None:
        """Wait for ``future`` before the flow finishes; fail the flow if it fails
        unobserved."""
        key = future.task_run_id
        with self._lock:
            self.submitted += 1
            self.unfinished += 1
            self.futures[key] = future
        future.concurrent_future.add_done_callback(lambda inner: self._settled(key, inner))

    def _settled(self, key: str, inner: Future[State]) -> None:
        keep = not inner.cancelled() and (
            inner.exception() is not None or not inner.result().is_completed()
        )
        with self._lock:
            if not keep:
                self.futures.pop(key, None)
            self.unfinished -= 1
            idle = self._idle if self.unfinished == 0 else None
            if idle is not None:
                self._idle = None
        if idle is not None:
            idle.set_result(None)

    def all_done(self) -> Future[None]:
        """A future that is done once every tracked task run has finished (also those
        submitted meanwhile by running tasks). Waiting on it holds no results."""
        from concurrent.futures import Future

        with self._lock:
            if self.unfinished == 0:
                done: Future[None] = Future()
                done.set_result(None)
                return done
            if self._idle is None:
                self._idle = Future()
            return self._idle

    def take_futures(self) -> tuple[list[RiverrunFuture[Any]], int]:
        """The tracked futures (unfinished or failed) and the count submitted since the
        last call; starts afresh."""
        with self._lock:
            futures, self.futures = list(self.futures.values()), {}
            submitted, self.submitted = self.submitted, 0
        return futures, submitted

    def reused(self, key: tuple[str, int], arguments: dict[str, Any]) -> State | None:
        """The state of the same call completed by an earlier attempt, if any."""
        earlier = self.completed.get(key)
        if earlier is None:
            return None
        state, earlier_arguments = earlier
        try:
            same = bool(earlier_arguments == arguments)
        except Exception:  # values whose == is not a plain bool (arrays, frames)
            same = False
        return state if same else None

    def remember(self, key: tuple[str, int], state: State, arguments: dict[str, Any]) -> None:
        """Keep a completed call for the flow's retries (only when it can retry)."""
        if self.reuse_completed:
            self.completed[key] = (state, arguments)

    def next_call_index(self, task_key: str) -> int:
        counter = self.counters.get(task_key)
        if counter is None:
            # setdefault is atomic, so two threads submitting at once share one counter.
            counter = self.counters.setdefault(task_key, itertools.count())
        return next(counter)


@dataclass(slots=True, eq=False)
class TaskRunContext:
    """The task run whose body is executing (``task_input_hash`` receives it)."""

    task: Task[..., Any]
    task_run: TaskRun
    parameters: dict[str, Any]
    logger: RunLogger
    log_prints: bool
    is_async: bool
    flow_run_context: FlowRunContext | None


flow_run_context: ContextVar[FlowRunContext | None] = ContextVar("riverrun_flow_run", default=None)
task_run_context: ContextVar[TaskRunContext | None] = ContextVar("riverrun_task_run", default=None)
_tags: ContextVar[tuple[str, ...]] = ContextVar("riverrun_tags", default=())


def current_tags() -> tuple[str, ...]:
    """Tags added by the ``tags()`` blocks around this point."""
    return _tags.get()


@contextmanager
def tags(*names: str) -> Iterator[tuple[str, ...]]:
    """Add tags to every flow and task run started inside the block.

    Example:
        >>> with tags("nightly", "eu"):
        ...     pipeline()
    """
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"tags must be non-empty strings, got {name!r}")
    combined = tuple(dict.fromkeys((*_tags.get(), *names)))
    token = _tags.set(combined)
    try:
        yield combined
    finally:
        _tags.reset(token)
