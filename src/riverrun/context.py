"""What the engine knows about the run in progress, kept in context variables.

Context variables follow a call into threads the engine starts (it copies the context)
and into asyncio tasks (which copy it themselves), so a task submitted from a flow sees
that flow's run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

    from riverrun.engine.caching import ResultDefaults
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
    # Defaults for the results of the flow's tasks (engine.caching.ResultDefaults).
    results: ResultDefaults | None = None
    # The flow run's arguments as given (the FLOW_PARAMETERS policy hashes them), and
    # their digest once computed (a worker of a remote runner receives only that).
    parameters: dict[str, Any] | None = None
    parameters_digest: str | None = None
    # When resuming a flow run: the earlier attempts' completed task runs with a
    # persisted result, by (task key, call index), and the attempt they come from.
    earlier: dict[tuple[str, int], TaskRun] | None = None
    completed: dict[tuple[str, int], tuple[State, dict[str, Any]]] = field(default_factory=dict)
    counters: dict[str, Iterator[int]] = field(default_factory=dict)
    # Both by the run's concurrent future, which the done-callback receives.
    futures: dict[Future[State], RiverrunFuture[Any]] = field(default_factory=dict)
    # The tracked runs not finished yet. No lock: a dict's single operations are
    # atomic, and a lock here was contended by every pool thread finishing a run.
    _pending: dict[Future[State], None] = field(default_factory=dict)
    _submitted: Iterator[int] = field(default_factory=itertools.count)
    _idle: Future[None] | None = None
    # One bound method is every future's done-callback: a closure per future kept four
    # more objects alive per submitted run (for the garbage collector to walk).
    _on_done: Callable[[Future[State]], None] | None = None

    def track(self, future: RiverrunFuture[Any]) -> None:
        """Wait for ``future`` before the flow finishes; fail the flow if it fails
        unobserved."""
        inner = future.concurrent_future
        next(self._submitted)
        self._pending[inner] = None
        self.futures[inner] = future
        on_done = self._on_done
        if on_done is None:
            on_done = self._on_done = self._settled
        inner.add_done_callback(on_done)

    def _settled(self, inner: Future[State]) -> None:
        if inner.cancelled() or (inner.exception() is None and inner.result().is_completed()):
            self.futures.pop(inner, None)
        self._pending.pop(inner, None)
        if not self._pending:
            idle = self._idle
            if idle is not None:
                _resolve(idle)

    def has_pending(self) -> bool:
        """Whether a tracked task run has not finished yet."""
        return bool(self._pending)

    def all_done(self) -> Future[None]:
        """A future that is done once every tracked task run has finished (also those
        submitted meanwhile by running tasks). Waiting on it holds no results."""
        from concurrent.futures import Future

        idle: Future[None] = Future()
        self._idle = idle
        # Checked after publishing it: a run settling meanwhile either sees this future
        # or has already emptied what is checked here.
        if not self._pending:
            _resolve(idle)
        return idle

    def take_futures(self) -> tuple[list[RiverrunFuture[Any]], int]:
        """The tracked futures (unfinished or failed) and the count submitted since the
        last call; starts afresh. Called when no run is being submitted."""
        futures, self.futures = list(self.futures.values()), {}
        submitted = next(self._submitted)
        self._submitted = itertools.count()
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

    # Built by position (engine/task_engine.py's run_call): keep this order.
    task: Task[..., Any]
    task_run: TaskRun
    parameters: dict[str, Any]
    logger: RunLogger
    log_prints: bool
    is_async: bool
    flow_run_context: FlowRunContext | None


def _resolve(idle: Future[None]) -> None:
    import contextlib
    from concurrent.futures import InvalidStateError

    # Both sides of the race may resolve it; the second one finds it done.
    with contextlib.suppress(InvalidStateError):
        idle.set_result(None)


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
