"""Crashed-run detection on the database: find the runs whose process is gone.

The rule (``riverrun.orchestration.crashes``) is pure; this module supplies what only
a process can see — its host name, and whether a pid of this host still exists — and
runs the sweep in a transaction.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from riverrun.db import liveness
from riverrun.db.engine import read_connection
from riverrun.orchestration.crashes import crash_reason, stale_after

__all__ = ["mark_crashed_runs", "process_alive"]

logger = logging.getLogger(__name__)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (this process always does).

    Signal 0 checks without sending anything. Only ``ProcessLookupError`` means gone:
    ``PermissionError`` is a live process of another user, and any other error leaves
    the question open, which must never crash a run.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def mark_crashed_runs(engine: Engine, *, heartbeat_interval: float) -> list[str]:
    """Mark Crashed the unfinished flow runs whose process is gone; return their ids.

    A read comes first, since most sweeps find nothing: on SQLite a write transaction
    takes the lock every recording process waits on. When it finds dead runs, one write
    transaction finds them again and marks each with a conditional UPDATE, so a run
    that finished, or that another sweeper marked, in between is left alone.
    """
    with read_connection(engine) as connection:
        if not _dead_runs(connection, heartbeat_interval):
            return []
    crashed: list[str] = []
    with engine.begin() as connection:
        now = datetime.now(UTC)
        for run_id, reason in _dead_runs(connection, heartbeat_interval):
            if liveness.crash_flow_run(connection, run_id, reason, now):
                crashed.append(run_id)
    for run_id in crashed:
        logger.info("Marked flow run %s Crashed", run_id)
    return crashed


def _dead_runs(connection: Connection, heartbeat_interval: float) -> list[tuple[str, str]]:
    """``(id, reason)`` of each unfinished flow run whose process must be dead."""
    now = datetime.now(UTC)
    this_host = socket.gethostname()
    max_silence = stale_after(heartbeat_interval)
    alive = functools.cache(process_alive)
    dead = []
    for run in liveness.select_unfinished_flow_runs(connection):
        reason = crash_reason(
            hostname=run.hostname,
            pid=run.pid,
            last_seen=run.last_seen,
            this_host=this_host,
            now=now,
            max_silence=max_silence,
            pid_alive=alive,
        )
        if reason is not None:
            dead.append((run.id, reason))
    return dead
