"""Which unfinished runs no process is running any more (pure: no I/O).

A flow run records the host and pid of the process running it, and that process
refreshes the run's heartbeat on an interval. A run is taken for crashed when its
process is known to be gone (same host, pid no longer exists), or when its heartbeat
has been silent for ``STALE_HEARTBEATS`` intervals — the only sign available for a run
on another host.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from riverrun.states import StateType

__all__ = ["STALE_HEARTBEATS", "UNFINISHED_FLOW_RUN_TYPES", "crash_reason", "stale_after"]

#: Flow run states that a live process is still responsible for.
UNFINISHED_FLOW_RUN_TYPES = frozenset(
    {StateType.PENDING, StateType.RUNNING, StateType.CANCELLING, StateType.PAUSED}
)

#: Heartbeat intervals without a heartbeat after which a run's process is taken for dead.
#: More than one, so that a flush that is slow once does not crash a live run.
STALE_HEARTBEATS = 3


def stale_after(heartbeat_interval: float) -> timedelta:
    """How old a heartbeat may grow before its run is taken for crashed."""
    return timedelta(seconds=STALE_HEARTBEATS * heartbeat_interval)


def crash_reason(
    *,
    hostname: str | None,
    pid: int | None,
    last_seen: datetime,
    this_host: str,
    now: datetime,
    max_silence: timedelta,
    pid_alive: Callable[[int], bool],
) -> str | None:
    """Why an unfinished run's process must be dead, or ``None`` if it may be alive.

    Args:
        hostname: the host the run was recorded on (``None`` for older records).
        pid: the id of the process running it there.
        last_seen: its latest heartbeat (its creation time when it has none).
        this_host: the host asking, the only one whose pids it can check.
        now: the current time (aware, like ``last_seen``).
        max_silence: how long a heartbeat may be silent (see ``stale_after``).
        pid_alive: tells whether a pid of this host exists; it must answer ``True`` for
            the asking process's own pid.
    """
    if hostname == this_host and pid is not None and pid > 0 and not pid_alive(pid):
        return f"Process {pid} on {hostname} is gone"
    if now - last_seen > max_silence:
        return f"No heartbeat since {last_seen.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return None
