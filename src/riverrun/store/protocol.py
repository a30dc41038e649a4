"""The ``RunStore`` protocol and the records it stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from riverrun.states import TYPE_VALUES, State

__all__ = [
    "CacheEntry",
    "ConcurrencyHolder",
    "ConcurrencyLease",
    "ConcurrencyLimit",
    "FlowRun",
    "LogEntry",
    "RunStore",
    "SlotGrant",
    "SlotRequest",
    "StateRecord",
    "TaskRun",
    "log_entry",
    "state_snapshot",
]


@dataclass(slots=True)
class FlowRun:
    """One run of a flow, as recorded (and as handed to flow hooks).

    ``parameters`` holds the JSON-safe form of the call's parameters. ``hostname`` and
    ``pid`` name the process running it, and ``heartbeat`` is when that process last
    said it was alive; crashed-run detection reads the three.
    """

    id: str
    name: str
    flow_name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    parent_flow_run_id: str | None = None
    parent_task_run_id: str | None = None
    state: State | None = None
    run_count: int = 0
    created: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    hostname: str | None = None
    pid: int | None = None
    heartbeat: datetime | None = None
    entrypoint: str | None = None
    # When ``parameters`` (JSON) lost information: where the exact ones are kept (a
    # result reference), or why they could not be (``{"unavailable": reason}``).
    resume_parameters: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds between the first Running state and the final state."""
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass(slots=True)
class TaskRun:
    """One run of a task inside a flow run (handed to task hooks)."""

    # The engine passes the first six by position (engine/task_engine.py): keep them
    # first, in this order.
    id: str
    name: str
    task_name: str
    flow_run_id: str | None
    dynamic_key: int = 0
    tags: list[str] = field(default_factory=list)
    state: State | None = None
    run_count: int = 0
    created: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    cache_key: str | None = None
    upstream_task_run_ids: list[str] = field(default_factory=list)
    subflow_run_id: str | None = None
    task_key: str | None = None
    # A reference to the persisted result (``engine.results.ResultRef`` as JSON).
    result: str | None = None

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass(slots=True, frozen=True)
class StateRecord:
    """A state transition as read back from the store."""

    run_id: str
    type: str
    name: str
    message: str | None
    timestamp: datetime


@dataclass(slots=True, frozen=True)
class LogEntry:
    """One log line emitted inside a flow or task run."""

    flow_run_id: str | None
    task_run_id: str | None
    level: int
    logger: str
    message: str
    timestamp: datetime

    def __reduce__(self) -> tuple[type[LogEntry], tuple[Any, ...]]:
        # Sent to the writer process by the thousand: the dataclass's generated
        # pickling walks its fields in Python for every entry.
        return LogEntry, (
            self.flow_run_id,
            self.task_run_id,
            self.level,
            self.logger,
            self.message,
            self.timestamp,
        )


def log_entry(
    flow_run_id: str | None,
    task_run_id: str | None,
    level: int,
    logger: str,
    message: str,
    created: float,
) -> LogEntry:
    """The ``LogEntry`` of ``RunStore.record_log_line``'s arguments."""
    return LogEntry(
        flow_run_id, task_run_id, level, logger, message, datetime.fromtimestamp(created, UTC)
    )


@dataclass(slots=True, frozen=True)
class CacheEntry:
    """A cached task result: where the pickled value lives and until when it is valid."""

    key: str
    location: str
    expiration: datetime | None
    created: datetime
    task_name: str | None = None


@dataclass(slots=True, frozen=True)
class ConcurrencyHolder:
    """Who holds (or asks for) concurrency slots: the run, and the process."""

    flow_run_id: str | None = None
    task_run_id: str | None = None
    hostname: str | None = None
    pid: int | None = None


@dataclass(slots=True, frozen=True)
class ConcurrencyLease:
    """Slots of one limit held by one holder until released or ``expiration``."""

    id: str
    limit_name: str
    slots: int
    holder: ConcurrencyHolder
    expiration: datetime
    created: datetime


@dataclass(slots=True, frozen=True)
class ConcurrencyLimit:
    """A named limit as read back, with what occupies it now.

    Attributes:
        limit: the number of slots (0 pauses every acquisition).
        slot_decay_per_second: how fast slots taken by ``rate_limit`` free themselves
            (0: the limit cannot be used for rate limiting).
        active_slots: slots held by unexpired leases plus rate slots not yet decayed.
        leases: the unexpired leases, oldest first.
        waiting: how many acquisitions are waiting in line.
    """

    name: str
    limit: int
    slot_decay_per_second: float
    active_slots: float
    leases: list[ConcurrencyLease]
    waiting: int
    created: datetime
    updated: datetime


@dataclass(slots=True, frozen=True)
class SlotRequest:
    """One attempt to take ``occupy`` slots of every limit in ``names`` at once.

    Attributes:
        hold: take a lease (``concurrency``), rather than decaying rate slots
            (``rate_limit``).
        lease_seconds: how long the lease, and the place in line, live unrenewed.
        ticket: the place in line an earlier attempt of the same acquisition got.
        create_if_missing: create a missing limit (with ``occupy`` slots) instead of
            raising ``ConcurrencyLimitNotFoundError``.
    """

    names: tuple[str, ...]
    occupy: int
    hold: bool
    lease_seconds: float
    holder: ConcurrencyHolder = field(default_factory=ConcurrencyHolder)
    ticket: int | None = None
    create_if_missing: bool = False


@dataclass(slots=True, frozen=True)
class SlotGrant:
    """The answer to a ``SlotRequest``.

    Attributes:
        granted: the slots were taken; ``lease_id`` names the lease (``None`` for rate
            slots, which are never released).
        ticket: when not granted, the place in line to pass to the next attempt.
        retry_after: when not granted, the seconds until decay frees enough slots
            (``None``: wait for a release).
    """

    granted: bool
    lease_id: str | None = None
    ticket: int | None = None
    retry_after: float | None = None


def state_snapshot(run: FlowRun | TaskRun, state: State) -> tuple[Any, ...]:
    """What a write-behind store queues for a state change: the state without its data
    (a result must not live on in a queue) and the run's columns as they stand after it
    (for a task run also its result reference and cache key, known once it started)."""
    is_task = type(run) is TaskRun
    return (
        "task" if is_task else "flow",
        run.id,
        TYPE_VALUES[state.type],
        state.name,
        state.message,
        state.timestamp,
        run.run_count,
        run.start_time,
        run.end_time,
        (run.result, run.cache_key) if is_task else None,  # type: ignore[union-attr]
    )


class RunStore(Protocol):
    """Where runs, states and logs are recorded and read back.

    Writes named ``create_*``/``*_cache_entry`` are synchronous; ``record_*`` and
    ``set_state`` are write-behind and become durable at the next ``flush()``. A store
    heartbeats the unfinished flow runs it created, for as long as its process lives.
    """

    def create_flow_run(self, run: FlowRun) -> None: ...

    def record_task_run(self, run: TaskRun) -> None: ...

    def set_state(self, run: FlowRun | TaskRun, state: State) -> None: ...

    def record_log(self, entry: LogEntry) -> None: ...

    def record_log_line(
        self,
        flow_run_id: str | None,
        task_run_id: str | None,
        level: int,
        logger: str,
        message: str,
        created: float,
    ) -> None:
        """``record_log`` from the line's parts (``created`` as ``time.time()`` gives
        it), for the engine's own line per run: a store may record it without making a
        ``LogEntry`` and a datetime first."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def read_cache_entry(self, key: str) -> CacheEntry | None: ...

    def write_cache_entry(self, entry: CacheEntry) -> None: ...

    def delete_cache_entries(
        self, *, task_name: str | None = None, key: str | None = None
    ) -> list[CacheEntry]:
        """Delete the cache entries of ``task_name`` and/or with ``key`` (every entry
        when both are ``None``) and return them."""
        ...

    def restart_flow_run(self, run: FlowRun, state: State) -> bool:
        """Move a flow run that ended without completing back to ``state`` (a new
        attempt, recorded under this process's host and pid), synchronously and only if
        it is still Failed, Crashed or Cancelled; whether it was moved. Two processes
        resuming one run at once: one of them gets ``True``."""
        ...

    def read_flow_runs(
        self,
        *,
        limit: int | None = None,
        state_names: list[str] | None = None,
        flow_name: str | None = None,
    ) -> list[FlowRun]: ...

    def read_flow_run(self, flow_run_id: str) -> FlowRun: ...

    def read_task_runs(self, flow_run_id: str) -> list[TaskRun]: ...

    def read_states(self, run_id: str) -> list[StateRecord]: ...

    def read_logs(self, flow_run_id: str) -> list[LogEntry]: ...

    def mark_crashed_runs(self) -> list[str]:
        """Mark Crashed every unfinished flow run whose process is gone, with its
        unfinished task runs, and return the ids of the flow runs marked.

        A run's process is gone when it ran on this host under a pid that no longer
        exists, or when its heartbeat is older than three heartbeat intervals. Two
        sweeps at once never record two Crashed states for one run.
        """
        ...

    # -- concurrency limits (see orchestration/concurrency.py for the rules) -------------

    def create_concurrency_limit(
        self, name: str, limit: int, *, slot_decay_per_second: float = 0.0
    ) -> ConcurrencyLimit:
        """Create a limit; ``ConcurrencyLimitExistsError`` if the name is taken."""
        ...

    def update_concurrency_limit(
        self, name: str, *, limit: int | None = None, slot_decay_per_second: float | None = None
    ) -> ConcurrencyLimit: ...

    def delete_concurrency_limit(self, name: str) -> None:
        """Delete a limit with its leases and waiters (its holders run on, unlimited)."""
        ...

    def reset_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        """Drop every lease, waiter and rate slot of a limit."""
        ...

    def read_concurrency_limit(self, name: str) -> ConcurrencyLimit: ...

    def read_concurrency_limits(self) -> list[ConcurrencyLimit]: ...

    def concurrency_limit_names(self) -> frozenset[str]:
        """The names of every limit; may be a few seconds stale (it is asked once per
        tagged task run, so it must cost no database round-trip each time)."""
        ...

    def acquire_concurrency_slots(self, request: SlotRequest) -> SlotGrant:
        """One attempt, in one transaction: grant the slots or give a place in line."""
        ...

    def renew_concurrency_leases(self, lease_ids: list[str], lease_seconds: float) -> list[str]:
        """Push back the expiration of leases; return the ids no longer held."""
        ...

    def release_concurrency_lease(self, lease_id: str) -> None: ...

    def leave_concurrency_line(self, ticket: int, names: tuple[str, ...]) -> None:
        """Give up a place in line (an acquisition timed out or was interrupted)."""
        ...
