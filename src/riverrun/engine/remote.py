"""Task runs in other processes (a process pool, Dask workers).

The flow's process records the run as Pending and sends one ``RemoteCall`` (pickled
with cloudpickle) to the worker, which runs the same task run loop with a
``RelayStore``: every state, log line and nested run it records is kept in a list and
returned with the result. The flow's process then writes those events to its own store.
So workers need no access to the run history, and a worker that dies leaves a task run
the flow's process marks Crashed.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from riverrun.context import FlowRunContext, current_tags, flow_run_context
from riverrun.engine.core import describe, log_final, propose
from riverrun.engine.dispatcher import cancel_with, dispatch, set_result
from riverrun.engine.effects import drive_async, drive_sync, run_coroutine_sync
from riverrun.engine.resume import can_reuse
from riverrun.engine.task_engine import TaskCall, record_pending, run_call
from riverrun.exceptions import TaskRunnerError
from riverrun.logging import flush_console, run_logger, setup_logging
from riverrun.states import Cancelled, Crashed, Failed, State
from riverrun.store.protocol import (
    CacheEntry,
    ConcurrencyLimit,
    FlowRun,
    LogEntry,
    SlotGrant,
    SlotRequest,
    StateRecord,
    TaskRun,
    log_entry,
)

if TYPE_CHECKING:
    from riverrun.engine.caching import ResultDefaults
    from riverrun.settings import Settings
    from riverrun.store.protocol import RunStore
    from riverrun.task_runners import TaskRunner
    from riverrun.tasks import Task

__all__ = ["RelayStore", "RemoteCall", "execute_remote", "launch_remote"]


@dataclasses.dataclass(slots=True)
class RemoteCall:
    """Everything a worker needs to run one task run."""

    task: Task[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    parameters: dict[str, Any]
    task_run: TaskRun
    label: str
    log_prints: bool
    flow_run: FlowRun
    settings: Settings
    tags: tuple[str, ...]
    results: ResultDefaults | None = None
    flow_parameters_digest: str | None = None


def _bare(state: State | None) -> State | None:
    """The state without its data (results stay out of the event list)."""
    if state is None:
        return None
    return State(state.type, state.name, message=state.message, timestamp=state.timestamp)


class RelayStore:
    """A store that keeps what a task run records, to hand it to the flow's process.

    Cache entries and reads go to the real store of the same settings, opened on first
    use (a worker on another machine without access to it runs uncached).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.events: list[tuple[str, Any]] = []
        self._real: RunStore | None = None

    def _store(self) -> RunStore:
        if self._real is None:
            from riverrun.store import get_store

            self._real = get_store(self.settings)
        return self._real

    def create_flow_run(self, run: FlowRun) -> None:
        self.events.append(("flow_run", dataclasses.replace(run, state=_bare(run.state))))

    def record_task_run(self, run: TaskRun) -> None:
        self.events.append(("task_run", dataclasses.replace(run, state=_bare(run.state))))

    def set_state(self, run: FlowRun | TaskRun, state: State) -> None:
        result = run.result if isinstance(run, TaskRun) else None
        self.events.append(
            ("state", (run.id, _bare(state), run.run_count, run.start_time, run.end_time, result))
        )

    def record_log(self, entry: LogEntry) -> None:
        self.events.append(("log", entry))

    def record_log_line(
        self,
        flow_run_id: str | None,
        task_run_id: str | None,
        level: int,
        logger: str,
        message: str,
        created: float,
    ) -> None:
        self.record_log(log_entry(flow_run_id, task_run_id, level, logger, message, created))

    def flush(self) -> None:
        """Nothing to write here: the events leave with the result."""

    def close(self) -> None:
        """Nothing to close: the real store, if opened, closes at exit."""

    def read_cache_entry(self, key: str) -> CacheEntry | None:
        return self._store().read_cache_entry(key)

    def write_cache_entry(self, entry: CacheEntry) -> None:
        self._store().write_cache_entry(entry)

    def delete_cache_entries(
        self, *, task_name: str | None = None, key: str | None = None
    ) -> list[CacheEntry]:
        return self._store().delete_cache_entries(task_name=task_name, key=key)

    def restart_flow_run(self, run: FlowRun, state: State) -> bool:
        return self._store().restart_flow_run(run, state)

    def read_flow_runs(
        self,
        *,
        limit: int | None = None,
        state_names: list[str] | None = None,
        flow_name: str | None = None,
    ) -> list[FlowRun]:
        return self._store().read_flow_runs(
            limit=limit, state_names=state_names, flow_name=flow_name
        )

    def read_flow_run(self, flow_run_id: str) -> FlowRun:
        return self._store().read_flow_run(flow_run_id)

    def read_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        return self._store().read_task_runs(flow_run_id)

    def read_states(self, run_id: str) -> list[StateRecord]:
        return self._store().read_states(run_id)

    def read_logs(self, flow_run_id: str) -> list[LogEntry]:
        return self._store().read_logs(flow_run_id)

    def mark_crashed_runs(self) -> list[str]:
        return self._store().mark_crashed_runs()

    # Concurrency slots are taken by the worker itself, in the real store: its own
    # renewer keeps them, and they expire if the worker dies.

    def create_concurrency_limit(
        self, name: str, limit: int, *, slot_decay_per_second: float = 0.0
    ) -> ConcurrencyLimit:
        return self._store().create_concurrency_limit(
            name, limit, slot_decay_per_second=slot_decay_per_second
        )

    def update_concurrency_limit(
        self, name: str, *, limit: int | None = None, slot_decay_per_second: float | None = None
    ) -> ConcurrencyLimit:
        return self._store().update_concurrency_limit(
            name, limit=limit, slot_decay_per_second=slot_decay_per_second
        )

    def delete_concurrency_limit(self, name: str) -> None:
        self._store().delete_concurrency_limit(name)

    def reset_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        return self._store().reset_concurrency_limit(name)

    def read_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        return self._store().read_concurrency_limit(name)

    def read_concurrency_limits(self) -> list[ConcurrencyLimit]:
        return self._store().read_concurrency_limits()

    def concurrency_limit_names(self) -> frozenset[str]:
        return self._store().concurrency_limit_names()

    def acquire_concurrency_slots(self, request: SlotRequest) -> SlotGrant:
        return self._store().acquire_concurrency_slots(request)

    def renew_concurrency_leases(self, lease_ids: list[str], lease_seconds: float) -> list[str]:
        return self._store().renew_concurrency_leases(lease_ids, lease_seconds)

    def release_concurrency_lease(self, lease_id: str) -> None:
        self._store().release_concurrency_lease(lease_id)

    def leave_concurrency_line(self, ticket: int, names: tuple[str, ...]) -> None:
        self._store().leave_concurrency_line(ticket, names)


# -- in the worker -------------------------------------------------------------------


def execute_remote(payload: bytes) -> bytes:
    """Run one pickled ``RemoteCall``; return the pickled final state (data apart), the
    pickled result, and the recorded events."""
    import cloudpickle

    from riverrun.context import _tags
    from riverrun.task_runners import ThreadPoolTaskRunner

    remote: RemoteCall = cloudpickle.loads(payload)
    setup_logging(remote.settings)
    relay = RelayStore(remote.settings)
    flow_run = remote.flow_run
    flow_context = FlowRunContext(
        flow=None,
        flow_run=flow_run,
        settings=remote.settings,
        store=relay,
        logger=run_logger(
            "riverrun.flow_runs", f"Flow run {flow_run.name!r}", relay, flow_run.id, None
        ),
        log_prints=remote.log_prints,
        is_async=False,
        task_runner=ThreadPoolTaskRunner(),
        results=remote.results,
        parameters_digest=remote.flow_parameters_digest,
    )
    call = TaskCall(
        task=remote.task,
        args=remote.args,
        kwargs=remote.kwargs,
        parameters=remote.parameters,
        task_run=remote.task_run,
        label=remote.label,
        log_prints=remote.log_prints,
        flow_context=flow_context,
        reuse_key=(remote.task.key, remote.task_run.dynamic_key),
        encode_result=cloudpickle.dumps,
    )
    flow_token = flow_run_context.set(flow_context)
    tags_token = _tags.set(remote.tags)
    try:
        loop = run_call(call)
        state = run_coroutine_sync(drive_async(loop)) if remote.task.is_async else drive_sync(loop)
    except BaseException as error:  # the worker is being stopped
        state = Crashed(f"Task run {remote.label!r} was interrupted: {describe(error)}")
    finally:
        _tags.reset(tags_token)
        flow_run_context.reset(flow_token)
        _finish_nested(flow_context)
        flush_console()
    if state.is_completed() and call.encoded_result is not None:
        data = call.encoded_result
    else:
        data = _encode_data(state.data, cloudpickle)
    return cloudpickle.dumps((_bare(state), data, relay.events))  # type: ignore[no-any-return]


def _finish_nested(flow_context: FlowRunContext) -> None:
    # Tasks the task submitted itself finish before its events are sent back.
    flow_context.all_done().result()
    flow_context.task_runner.shutdown(wait=True)


def _encode_data(data: Any, cloudpickle: Any) -> bytes:
    try:
        return cloudpickle.dumps(data)  # type: ignore[no-any-return]
    except Exception as error:
        if isinstance(data, BaseException):
            # An exception that cannot travel still tells what happened.
            stand_in = TaskRunnerError(f"{describe(data)} (could not be sent back: {error})")
            return cloudpickle.dumps(stand_in)  # type: ignore[no-any-return]
        return cloudpickle.dumps(None)  # type: ignore[no-any-return]


# -- in the flow's process -----------------------------------------------------------


def launch_remote(call: TaskCall, runner: TaskRunner, result: Future[State]) -> None:
    """Record ``call`` as Pending and send it to ``runner``; ``result`` gets its final
    state once the worker's events are recorded here."""
    import cloudpickle

    record_pending(call)
    flow_context = call.flow_context
    assert flow_context is not None
    if flow_context.earlier and can_reuse(flow_context, call.task, call.reuse_key, call.parameters):
        # A resumed run reusing an earlier attempt's result: read here, nothing to send.
        set_result(result, drive_sync(run_call(call)))
        return
    remote = RemoteCall(
        task=call.task,
        args=call.args,
        kwargs=call.kwargs,
        parameters=call.parameters,
        task_run=dataclasses.replace(call.task_run, state=_bare(call.task_run.state)),
        label=call.label,
        log_prints=call.log_prints,
        flow_run=FlowRun(
            id=flow_context.flow_run.id,
            name=flow_context.flow_run.name,
            flow_name=flow_context.flow_run.flow_name,
            parameters=flow_context.flow_run.parameters,
        ),
        settings=flow_context.settings,
        tags=current_tags(),
        results=flow_context.results,
        flow_parameters_digest=_parameters_digest(call, flow_context),
    )
    try:
        payload = cloudpickle.dumps(remote)
    except Exception as error:
        problem = TaskRunnerError(
            f"Task run {call.label!r} cannot be sent to {runner!r}: its task or arguments "
            f"cannot be pickled ({describe(error)})"
        )
        _settle(call, result, Failed(str(problem), data=problem))
        return
    try:
        inner = runner.submit(execute_remote, payload)
    except Exception as error:
        problem = TaskRunnerError(f"{runner!r} could not start task run {call.label!r}: {error}")
        _settle(call, result, Crashed(str(problem), data=problem))
        return
    # The runner's callback thread must not block: the dispatcher records the events.
    inner.add_done_callback(lambda done: dispatch(lambda: _receive(call, result, done)))
    cancel_with(result, inner)


def _parameters_digest(call: TaskCall, flow_context: FlowRunContext) -> str | None:
    """The flow's parameters digest, for a cached task whose key may need it (the
    worker has only the parameters' stored form)."""
    if call.task.cache_policy is None or flow_context.parameters is None:
        return flow_context.parameters_digest
    if flow_context.parameters_digest is None:
        from riverrun.hashing import UnhashableInputError, stable_digest

        try:
            flow_context.parameters_digest = stable_digest(flow_context.parameters)
        except UnhashableInputError:
            return None
    return flow_context.parameters_digest


def _receive(call: TaskCall, result: Future[State], done: Future[bytes]) -> None:
    import cloudpickle

    if done.cancelled():
        _settle(call, result, Cancelled("The flow run ended before this task run started"))
        return
    try:
        bare, data, events = cloudpickle.loads(done.result())
    except BaseException as error:
        problem = TaskRunnerError(
            f"The task runner lost task run {call.label!r}: {describe(error)}"
        )
        _settle(call, result, Crashed(str(problem), data=problem))
        return
    try:
        _record(call, events)
        state = State(bare.type, bare.name, message=bare.message, timestamp=bare.timestamp)
        state.data = cloudpickle.loads(data)
    except BaseException as error:
        problem = TaskRunnerError(
            f"The result of task run {call.label!r} could not be received: {describe(error)}"
        )
        state = Failed(str(problem), data=problem)
        _settle(call, result, state)
        return
    if state.is_completed() and call.flow_context is not None:
        call.flow_context.remember(call.reuse_key, state, call.parameters)
    set_result(result, state)


def _record(call: TaskCall, events: list[tuple[str, Any]]) -> None:
    """Write a worker's events to this process's store."""
    assert call.flow_context is not None
    store = call.flow_context.store
    runs: dict[str, FlowRun | TaskRun] = {call.task_run.id: call.task_run}
    for tag, payload in events:
        if tag == "log":
            store.record_log(payload)
        elif tag == "state":
            run_id, state, run_count, start_time, end_time, result = payload
            run = runs[run_id]
            run.run_count, run.start_time, run.end_time = run_count, start_time, end_time
            if isinstance(run, TaskRun):
                run.result = result
            run.state = state
            store.set_state(run, state)
        elif tag == "task_run":
            runs[payload.id] = payload
            store.record_task_run(payload)
        else:
            runs[payload.id] = payload
            store.create_flow_run(payload)


def _settle(call: TaskCall, result: Future[State], state: State) -> None:
    """Record a final state decided here (the worker never reported one)."""
    store, logger = call.store, call.logger()
    if not state.is_cancelled():
        logger.error("%s", state.message)
    try:
        propose(store, call.task_run, state)
    except Exception:  # the run already reached a final state somewhere
        logger.exception("Could not record the state of task run %r", call.label)
    log_final(logger, state)
    set_result(result, state)
