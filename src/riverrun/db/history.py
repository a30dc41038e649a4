"""The run history as the API server writes and pages it.

Three things the embedded store never needs:

- **Idempotent batches.** An event a client sends may arrive twice (a retry after a
  lost answer, a spool delivered again). Flow and task runs are keyed by their id,
  states and logs by the ``event_id`` their client made: ``apply_events`` drops the
  ones already recorded, and only a state that is new moves its run's latest columns,
  so a repeat can never move a run back.
- **Checked transitions.** ``set_state_checked`` reads the run's current state and
  writes the new one in one transaction, after the orchestration rules allowed it.
- **Pages.** Lists with ``limit``, ``offset`` and a sort order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Table, func, insert, or_, select, update

from riverrun.db import repository
from riverrun.db.tables import flow_runs, flows, logs, states, task_runs
from riverrun.exceptions import ObjectNotFoundError
from riverrun.orchestration import check_transition
from riverrun.states import FINAL_TYPES, TYPE_VALUES, State, StateType
from riverrun.store.protocol import FlowRun, LogEntry, StateRecord, TaskRun

__all__ = [
    "EventBatch",
    "FlowRunSort",
    "StateEvent",
    "apply_events",
    "ensure_flow",
    "existing_flow_run",
    "page_flow_runs",
    "page_logs",
    "page_task_runs",
    "select_task_run",
    "set_state_checked",
]

FlowRunSort = Literal["CREATED_DESC", "CREATED_ASC", "NAME_ASC", "NAME_DESC"]
RunKind = Literal["flow", "task"]


@dataclass(slots=True)
class StateEvent:
    """A state a client recorded, with the run's columns as they stood after it."""

    event_id: str
    run_id: str
    kind: RunKind
    state: State
    run_count: int
    start_time: datetime | None
    end_time: datetime | None
    result: str | None = None  # task runs only: the persisted result's reference
    cache_key: str | None = None  # task runs only


@dataclass(slots=True)
class EventBatch:
    """Events in arrival order, grouped by kind (each kind keeps its own order)."""

    flow_runs: list[FlowRun] = field(default_factory=list)
    task_runs: list[TaskRun] = field(default_factory=list)
    states: list[StateEvent] = field(default_factory=list)
    logs: list[tuple[str, LogEntry]] = field(default_factory=list)


def _existing(connection: Connection, column: Any, values: Iterable[str]) -> set[str]:
    wanted = list(dict.fromkeys(values))
    found: set[str] = set()
    # Chunks keep the IN list under every driver's parameter limit.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(connection.execute(select(column).where(column.in_(chunk))).scalars())
    return found


def apply_events(connection: Connection, batch: EventBatch) -> int:
    """Record the events not recorded yet; return how many were new."""
    new = 0
    seen_flows = _existing(connection, flow_runs.c.id, (run.id for run in batch.flow_runs))
    for run in batch.flow_runs:
        if run.id not in seen_flows:
            repository.insert_flow_run(connection, run)
            seen_flows.add(run.id)
            new += 1
    out = repository.Batch.empty(event_ids=True)
    seen_tasks = _existing(connection, task_runs.c.id, (run.id for run in batch.task_runs))
    for task_run in batch.task_runs:
        if task_run.id not in seen_tasks:
            out.task_runs.append(list(repository.task_run_values(task_run)))
            seen_tasks.add(task_run.id)
    micros = repository.micros
    seen_states = _existing(connection, states.c.event_id, (e.event_id for e in batch.states))
    for event in batch.states:
        if event.event_id in seen_states:
            continue
        seen_states.add(event.event_id)
        state = event.state
        out.states.append(
            (*repository.state_values(event.run_id, event.kind, state), event.event_id)
        )
        latest = (
            TYPE_VALUES[state.type],
            state.name,
            state.message,
            event.run_count,
            micros(event.start_time),
            micros(event.end_time),
        )
        if event.kind == "task":
            out.task_run_updates[event.run_id] = (*latest, event.result, event.cache_key)
        else:
            out.flow_run_updates[event.run_id] = latest
    seen_logs = _existing(connection, logs.c.event_id, (event_id for event_id, _ in batch.logs))
    for event_id, entry in batch.logs:
        if event_id in seen_logs:
            continue
        seen_logs.add(event_id)
        out.logs.append(
            (
                entry.flow_run_id,
                entry.task_run_id,
                entry.level,
                entry.logger,
                entry.message,
                micros(entry.timestamp),
                event_id,
            )
        )
    new += len(out.task_runs) + len(out.states) + len(out.logs)
    repository.apply_batch(connection, out)
    return new


def existing_flow_run(connection: Connection, run_id: str) -> FlowRun | None:
    """The flow run with exactly this id, or ``None``."""
    row = connection.execute(select(flow_runs).where(flow_runs.c.id == run_id)).first()
    return None if row is None else repository._flow_run(row)


def select_task_run(connection: Connection, task_run_id: str) -> TaskRun:
    row = connection.execute(select(task_runs).where(task_runs.c.id == task_run_id)).first()
    if row is None:
        raise ObjectNotFoundError("task run", task_run_id)
    return repository._task_run(row)


def ensure_flow(connection: Connection, name: str) -> tuple[str, datetime, bool]:
    """The flow of this name as ``(id, created, created_now)``, recorded if new."""
    row = connection.execute(
        select(flows.c.id, flows.c.created).where(flows.c.name == name)
    ).first()
    if row is not None:
        return row.id, row.created, False
    flow_id, now = str(uuid.uuid4()), datetime.now(UTC)
    connection.execute(insert(flows), [{"id": flow_id, "name": name, "created": now}])
    return flow_id, now, True


def set_state_checked(
    connection: Connection,
    kind: RunKind,
    run_id: str,
    state: State,
    *,
    force: bool,
    event_id: str | None = None,
) -> FlowRun | TaskRun:
    """Move a run to ``state`` if the rules allow it (or ``force``), in this transaction.

    The run's row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite's write
    transaction already holds the database), so two proposals for one run are decided
    one after the other.

    Raises:
        ObjectNotFoundError: there is no such run.
        IllegalTransitionError: the rules forbid the move and ``force`` is false.
    """
    table: Table = flow_runs if kind == "flow" else task_runs
    query = select(table).where(table.c.id == run_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None:
        raise ObjectNotFoundError(f"{kind} run", run_id)
    current = None if row.state_type is None else StateType(row.state_type)
    if not force:
        check_transition(current, state.type)
    run_count, start_time, end_time = row.run_count, row.start_time, row.end_time
    if state.type is StateType.RUNNING and current is not StateType.RUNNING:
        run_count += 1
        start_time = start_time or state.timestamp
    if state.type in FINAL_TYPES:
        end_time = state.timestamp
    connection.execute(
        update(table)
        .where(table.c.id == run_id)
        .values(
            state_type=TYPE_VALUES[state.type],
            state_name=state.name,
            state_message=state.message,
            run_count=run_count,
            start_time=start_time,
            end_time=end_time,
        )
    )
    state_values = repository.state_row(run_id, kind, state)
    state_values["event_id"] = event_id
    connection.execute(insert(states), [state_values])
    row = connection.execute(select(table).where(table.c.id == run_id)).one()
    return repository._flow_run(row) if kind == "flow" else repository._task_run(row)


_FLOW_RUN_ORDER = {
    "CREATED_DESC": (flow_runs.c.created.desc(), flow_runs.c.id),
    "CREATED_ASC": (flow_runs.c.created.asc(), flow_runs.c.id),
    "NAME_ASC": (flow_runs.c.name.asc(), flow_runs.c.id),
    "NAME_DESC": (flow_runs.c.name.desc(), flow_runs.c.id),
}


def page_flow_runs(
    connection: Connection,
    *,
    limit: int,
    offset: int = 0,
    sort: FlowRunSort = "CREATED_DESC",
    state_names: Sequence[str] | None = None,
    flow_name: str | None = None,
) -> list[FlowRun]:
    """Flow runs matching the filters, one page of them in ``sort`` order."""
    query = select(flow_runs).order_by(*_FLOW_RUN_ORDER[sort])
    if state_names:
        wanted = {name.lower() for name in state_names}
        query = query.where(
            or_(
                func.lower(flow_runs.c.state_name).in_(wanted),
                func.lower(flow_runs.c.state_type).in_(wanted),
            )
        )
    if flow_name:
        query = query.where(flow_runs.c.flow_name == flow_name)
    query = query.limit(limit).offset(offset)
    return [repository._flow_run(row) for row in connection.execute(query)]


def page_task_runs(
    connection: Connection, *, flow_run_id: str | None, limit: int, offset: int = 0
) -> list[TaskRun]:
    """Task runs (of one flow run, if given), oldest first."""
    query = select(task_runs).order_by(task_runs.c.created, task_runs.c.id)
    if flow_run_id is not None:
        query = query.where(task_runs.c.flow_run_id == flow_run_id)
    query = query.limit(limit).offset(offset)
    return [repository._task_run(row) for row in connection.execute(query)]


def page_logs(
    connection: Connection,
    *,
    flow_run_id: str | None,
    task_run_id: str | None,
    level_at_least: int,
    limit: int,
    offset: int = 0,
) -> list[LogEntry]:
    """Log lines matching the filters, in the order they were recorded."""
    query = select(logs).where(logs.c.level >= level_at_least).order_by(logs.c.id)
    if flow_run_id is not None:
        query = query.where(logs.c.flow_run_id == flow_run_id)
    if task_run_id is not None:
        query = query.where(logs.c.task_run_id == task_run_id)
    query = query.limit(limit).offset(offset)
    return [repository.log_entry(row) for row in connection.execute(query)]


def page_states(connection: Connection, run_id: str) -> list[StateRecord]:
    """A run's state history, oldest first."""
    return repository.select_states(connection, run_id)
