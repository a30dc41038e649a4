"""The queries of crashed-run detection: heartbeats, unfinished runs, marking Crashed.

Kept beside ``repository.py`` (whose row helpers it uses) so that module stays one
screenful of concerns; like it, this is the only place these statements are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, or_, select, update

from riverrun.db import statements
from riverrun.db.repository import connection_driver, state_row
from riverrun.db.tables import concurrency_leases, flow_runs, states, task_runs
from riverrun.orchestration.crashes import UNFINISHED_FLOW_RUN_TYPES
from riverrun.states import FINAL_TYPES, State, StateType

__all__ = [
    "UnfinishedFlowRun",
    "crash_flow_run",
    "select_unfinished_flow_runs",
    "update_heartbeats",
]

_UNFINISHED = sorted(kind.value for kind in UNFINISHED_FLOW_RUN_TYPES)
_FINAL = sorted(kind.value for kind in FINAL_TYPES)


@dataclass(slots=True, frozen=True)
class UnfinishedFlowRun:
    """What crash detection needs to know of a flow run that has not finished.

    Attributes:
        last_seen: its latest heartbeat, or its creation time when it has none.
    """

    id: str
    hostname: str | None
    pid: int | None
    last_seen: datetime


def update_heartbeats(connection: Connection, flow_run_ids: Sequence[str], now: datetime) -> None:
    """Set the heartbeat of the given flow runs to ``now``."""
    statements.update_heartbeats(connection_driver(connection), flow_run_ids, now)


def select_unfinished_flow_runs(connection: Connection) -> list[UnfinishedFlowRun]:
    """Every flow run in a state a live process is still responsible for."""
    query = select(
        flow_runs.c.id,
        flow_runs.c.hostname,
        flow_runs.c.pid,
        flow_runs.c.heartbeat,
        flow_runs.c.created,
    ).where(flow_runs.c.state_type.in_(_UNFINISHED))
    return [
        UnfinishedFlowRun(
            id=row.id,
            hostname=row.hostname,
            pid=row.pid,
            last_seen=row.heartbeat or row.created,
        )
        for row in connection.execute(query)
    ]


def crash_flow_run(connection: Connection, flow_run_id: str, message: str, now: datetime) -> bool:
    """Move a flow run, and each of its task runs that has not finished, to Crashed,
    and free the concurrency slots they held.

    The flow run's UPDATE is conditional on it still being unfinished, so when two
    processes sweep at once, the second finds nothing to change (PostgreSQL makes it
    wait for the first's row lock, then re-checks; SQLite runs one writer at a time)
    and writes no second Crashed state.

    Returns:
        Whether the run was marked (``False``: it finished or was marked meanwhile).
    """
    columns = {
        "state_type": "CRASHED",
        "state_name": "Crashed",
        "state_message": message,
        "end_time": now,
    }
    marked = connection.execute(
        update(flow_runs)
        .where(flow_runs.c.id == flow_run_id, flow_runs.c.state_type.in_(_UNFINISHED))
        .values(columns)
    )
    if marked.rowcount != 1:
        return False
    crashed = State(StateType.CRASHED, message=message, timestamp=now)
    rows = [state_row(flow_run_id, "flow", crashed)]
    # Winning the flow run's row above makes this process the only one changing its task
    # runs now: their own process is gone, and any other sweeper lost that UPDATE.
    unfinished = or_(task_runs.c.state_type.is_(None), task_runs.c.state_type.not_in(_FINAL))
    task_run_ids = list(
        connection.scalars(
            select(task_runs.c.id).where(task_runs.c.flow_run_id == flow_run_id, unfinished)
        )
    )
    if task_run_ids:
        connection.execute(
            update(task_runs).where(task_runs.c.id.in_(task_run_ids), unfinished).values(columns)
        )
        rows += [state_row(task_run_id, "task", crashed) for task_run_id in task_run_ids]
    connection.execute(insert(states), rows)
    # Its concurrency slots go to the next in line now, not when their leases expire.
    connection.execute(
        delete(concurrency_leases).where(concurrency_leases.c.flow_run_id == flow_run_id)
    )
    return True
