"""The REST routes under ``/api``: runs, states, logs and cache entries.

Every write is committed before its answer is sent (the server keeps no queue), and
every write is idempotent under the ids the client chose, so a client that retries
after a lost answer records nothing twice.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from sqlalchemy import Connection, Engine

from riverrun.db import history, liveness, repository
from riverrun.db.engine import read_connection, redacted
from riverrun.exceptions import ObjectNotFoundError
from riverrun.server import schemas as s
from riverrun.store import crashes
from riverrun.store.protocol import TaskRun

__all__ = ["router"]

router = APIRouter(prefix="/api")


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


class _Reader:
    """Read-only connections (on SQLite they never take the write lock)."""

    def __init__(self, request: Request) -> None:
        self.engine = _engine(request)

    def __call__(self) -> AbstractContextManager[Connection]:
        return read_connection(self.engine)


async def _reader(request: Request) -> _Reader:
    # async: building it needs no thread (a sync dependency costs a threadpool hop).
    return _Reader(request)


Read = Annotated[_Reader, Depends(_reader)]


class _Writer:
    """A write transaction opened inside the endpoint, so that it is committed before
    the answer is built (never in a dependency's exit, which may run after it)."""

    def __init__(self, request: Request) -> None:
        self.engine = _engine(request)

    def __call__(self) -> AbstractContextManager[Connection]:
        return self.engine.begin()


async def _writer(request: Request) -> _Writer:
    return _Writer(request)


Write = Annotated[_Writer, Depends(_writer)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": s.ErrorOut, "description": "No object with that id"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": s.ErrorOut, "description": "The orchestration rules refused it"}
}


@router.get("/health", tags=["server"])
def health(request: Request) -> s.HealthOut:
    """Answers 200 while the server runs (and names its database, password hidden)."""
    return s.HealthOut(status="ok", database=redacted(_engine(request).url))


# -- flows --------------------------------------------------------------------------


@router.post("/flows/", tags=["flows"], status_code=status.HTTP_201_CREATED)
def create_flow(body: s.FlowCreate, tx: Write, response: Response) -> s.FlowOut:
    """Register a flow by name (the same name always gives the same flow)."""
    with tx() as connection:
        flow_id, created, is_new = history.ensure_flow(connection, body.name)
        if not is_new:
            response.status_code = status.HTTP_200_OK
        return s.FlowOut(id=flow_id, name=body.name, created=created)


# -- flow runs ------------------------------------------------------------------------


@router.post("/flow_runs/", tags=["flow runs"], status_code=status.HTTP_201_CREATED)
def create_flow_run(body: s.FlowRunCreate, tx: Write, response: Response) -> s.FlowRunOut:
    """Record a new flow run (and its first state). A run whose id is already recorded
    is returned as it is, with 200, so a retried request creates nothing twice."""
    with tx() as connection:
        existing = history.existing_flow_run(connection, body.id)
        if existing is not None:
            response.status_code = status.HTTP_200_OK
            return s.FlowRunOut.of(existing)
        run = body.to_run()
        repository.insert_flow_run(connection, run)
        return s.FlowRunOut.of(repository.select_flow_run(connection, run.id))


@router.post("/flow_runs/filter", tags=["flow runs"])
def filter_flow_runs(body: s.FlowRunFilter, rx: Read) -> list[s.FlowRunOut]:
    """Flow runs matching the filter, a page at a time (newest first by default)."""
    with rx() as connection:
        runs = history.page_flow_runs(
            connection,
            limit=body.limit,
            offset=body.offset,
            sort=body.sort,
            state_names=body.state_names,
            flow_name=body.flow_name,
        )
        return [s.FlowRunOut.of(run) for run in runs]


@router.post("/flow_runs/heartbeat", tags=["flow runs"])
def heartbeat(body: s.IdsIn, tx: Write) -> s.IdsOut:
    """Refresh the heartbeat of these flow runs (a client names the ones it runs)."""
    with tx() as connection:
        liveness.update_heartbeats(connection, list(body.ids), datetime.now(UTC))
        return s.IdsOut(ids=list(body.ids))


@router.post("/flow_runs/mark_crashed", tags=["flow runs"])
def mark_crashed(request: Request) -> s.IdsOut:
    """Mark Crashed the unfinished flow runs whose process is gone; return their ids."""
    interval: float = request.app.state.heartbeat_interval
    return s.IdsOut(ids=crashes.mark_crashed_runs(_engine(request), heartbeat_interval=interval))


@router.get("/flow_runs/{flow_run_id}", tags=["flow runs"], responses=NOT_FOUND)
def read_flow_run(flow_run_id: str, rx: Read) -> s.FlowRunOut:
    """One flow run, by id or by a unique prefix of at least four characters."""
    with rx() as connection:
        return s.FlowRunOut.of(repository.select_flow_run(connection, flow_run_id))


@router.post(
    "/flow_runs/{flow_run_id}/set_state", tags=["flow runs"], responses=NOT_FOUND | CONFLICT
)
def set_flow_run_state(flow_run_id: str, body: s.SetStateRequest, tx: Write) -> s.FlowRunOut:
    """Propose a state; an illegal transition is refused with 409 and nothing written."""
    with tx() as connection:
        run = history.set_state_checked(
            connection,
            "flow",
            flow_run_id,
            body.state.to_state(),
            force=body.force,
            event_id=body.event_id,
        )
        assert not isinstance(run, TaskRun)
        return s.FlowRunOut.of(run)


@router.get("/flow_runs/{flow_run_id}/states", tags=["flow runs"], responses=NOT_FOUND)
def flow_run_states(flow_run_id: str, rx: Read) -> list[s.StateRecordOut]:
    """The flow run's state history, oldest first."""
    with rx() as connection:
        if history.existing_flow_run(connection, flow_run_id) is None:
            raise ObjectNotFoundError("flow run", flow_run_id)
        return [s.StateRecordOut.of(r) for r in history.page_states(connection, flow_run_id)]


# -- task runs ------------------------------------------------------------------------


@router.post("/task_runs/", tags=["task runs"], status_code=status.HTTP_201_CREATED)
def create_task_run(body: s.TaskRunCreate, tx: Write, response: Response) -> s.TaskRunOut:
    """Record a new task run; one already recorded is returned as it is, with 200."""
    with tx() as connection:
        batch = history.EventBatch(task_runs=[body.to_run()])
        if body.state is not None:
            batch.states.append(
                history.StateEvent(
                    event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"first-state:{body.id}")),
                    run_id=body.id,
                    kind="task",
                    state=body.state.to_state(),
                    run_count=body.run_count,
                    start_time=body.start_time,
                    end_time=body.end_time,
                )
            )
        if not history.apply_events(connection, batch):
            response.status_code = status.HTTP_200_OK
        return s.TaskRunOut.of(history.select_task_run(connection, body.id))


@router.post("/task_runs/filter", tags=["task runs"])
def filter_task_runs(body: s.TaskRunFilter, rx: Read) -> list[s.TaskRunOut]:
    """Task runs (of one flow run, if given), oldest first, a page at a time."""
    with rx() as connection:
        runs = history.page_task_runs(
            connection, flow_run_id=body.flow_run_id, limit=body.limit, offset=body.offset
        )
        return [s.TaskRunOut.of(run) for run in runs]


@router.get("/task_runs/{task_run_id}", tags=["task runs"], responses=NOT_FOUND)
def read_task_run(task_run_id: str, rx: Read) -> s.TaskRunOut:
    with rx() as connection:
        return s.TaskRunOut.of(history.select_task_run(connection, task_run_id))


@router.post(
    "/task_runs/{task_run_id}/set_state", tags=["task runs"], responses=NOT_FOUND | CONFLICT
)
def set_task_run_state(task_run_id: str, body: s.SetStateRequest, tx: Write) -> s.TaskRunOut:
    """Propose a state; an illegal transition is refused with 409 and nothing written."""
    with tx() as connection:
        run = history.set_state_checked(
            connection,
            "task",
            task_run_id,
            body.state.to_state(),
            force=body.force,
            event_id=body.event_id,
        )
        assert isinstance(run, TaskRun)
        return s.TaskRunOut.of(run)


@router.get("/task_runs/{task_run_id}/states", tags=["task runs"], responses=NOT_FOUND)
def task_run_states(task_run_id: str, rx: Read) -> list[s.StateRecordOut]:
    with rx() as connection:
        history.select_task_run(connection, task_run_id)
        return [s.StateRecordOut.of(r) for r in history.page_states(connection, task_run_id)]


@router.post("/states/filter", tags=["states"])
def filter_states(body: s.StateFilter, rx: Read) -> list[s.StateRecordOut]:
    """The state history of a flow or task run, oldest first (empty for an unknown id)."""
    with rx() as connection:
        return [s.StateRecordOut.of(r) for r in history.page_states(connection, body.run_id)]


# -- logs and events ---------------------------------------------------------------------


@router.post("/logs/", tags=["logs"], status_code=status.HTTP_201_CREATED)
def create_logs(body: list[s.LogIn], tx: Write) -> s.AcceptedOut:
    """Record log lines; a line whose id is already recorded is ignored."""
    if len(body) > s.MAX_BATCH:
        raise HTTPException(422, f"At most {s.MAX_BATCH} log lines per request")
    with tx() as connection:
        batch = history.EventBatch(logs=[(line.id, line.to_entry()) for line in body])
        return s.AcceptedOut(received=len(body), new=history.apply_events(connection, batch))


@router.post("/logs/filter", tags=["logs"])
def filter_logs(body: s.LogFilter, rx: Read) -> list[s.LogOut]:
    """Log lines matching the filter, in the order they were recorded."""
    with rx() as connection:
        entries = history.page_logs(
            connection,
            flow_run_id=body.flow_run_id,
            task_run_id=body.task_run_id,
            level_at_least=body.level_at_least,
            limit=body.limit,
            offset=body.offset,
        )
        return [s.LogOut.of(entry) for entry in entries]


@router.post("/events/batch", tags=["events"])
def record_events(body: s.EventBatchIn, tx: Write) -> s.AcceptedOut:
    """Record what a client's engine queued: runs, states (already checked by the same
    orchestration rules in the client) and logs, in one transaction. Events already
    recorded (same id) are ignored."""
    with tx() as connection:
        batch = history.EventBatch()
        for event in body.events:
            if isinstance(event, s.FlowRunEvent):
                batch.flow_runs.append(event.run.to_run())
            elif isinstance(event, s.TaskRunEvent):
                batch.task_runs.append(event.run.to_run())
            elif isinstance(event, s.StateEventIn):
                batch.states.append(
                    history.StateEvent(
                        event_id=event.id,
                        run_id=event.run_id,
                        kind=event.run_kind,
                        state=event.state.to_state(),
                        run_count=event.run_count,
                        start_time=event.start_time,
                        end_time=event.end_time,
                        result=event.result,
                        cache_key=event.cache_key,
                    )
                )
            else:
                batch.logs.append((event.log.id, event.log.to_entry()))
        new = history.apply_events(connection, batch)
        return s.AcceptedOut(received=len(body.events), new=new)


# -- cache entries ----------------------------------------------------------------------


@router.post("/cache_entries/read", tags=["cache"])
def read_cache_entry(body: s.CacheKeyIn, rx: Read) -> s.CacheEntryIO | None:
    """The cache entry under ``key``, or ``null``."""
    with rx() as connection:
        entry = repository.select_cache_entry(connection, body.key)
        return None if entry is None else s.CacheEntryIO.of(entry)


@router.post("/cache_entries/", tags=["cache"])
def write_cache_entry(body: s.CacheEntryIO, tx: Write) -> s.CacheEntryIO:
    """Write (or replace) the cache entry under ``body.key``."""
    with tx() as connection:
        repository.upsert_cache_entry(connection, body.to_entry())
        return body


@router.post("/cache_entries/delete", tags=["cache"])
def delete_cache_entries(body: s.CacheDeleteIn, tx: Write) -> list[s.CacheEntryIO]:
    """Delete the entries of a task and/or with a key (all of them when neither is
    given) and return them (their result files are the client's to remove)."""
    with tx() as connection:
        removed = repository.delete_cache_entries(
            connection, task_name=body.task_name, key=body.key
        )
        return [s.CacheEntryIO.of(entry) for entry in removed]


@router.post("/flow_runs/{flow_run_id}/restart", tags=["flow runs"], responses=NOT_FOUND)
def restart_flow_run(flow_run_id: str, body: s.FlowRunRestartIn, tx: Write) -> s.RestartOut:
    """Start the next attempt of a Failed, Crashed or Cancelled flow run (a resume):
    ``moved`` is false when the run is not (or no longer) in such a state, so of two
    clients resuming one run, one is told no."""
    with tx() as connection:
        run = repository.select_flow_run(connection, flow_run_id)
        if run.id != flow_run_id:
            raise ObjectNotFoundError("flow run", flow_run_id)  # no prefixes here
        run.hostname, run.pid, run.heartbeat = body.hostname, body.pid, datetime.now(UTC)
        moved = repository.restart_flow_run(connection, run, body.state.to_state())
        return s.RestartOut(moved=moved)
