"""The flow run loop: create the run, validate parameters, run the body with retries."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import socket
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from riverrun.context import (
    FlowRunContext,
    current_tags,
    flow_run_context,
    task_run_context,
)
from riverrun.engine.caching import ResultDefaults
from riverrun.engine.core import (
    attempt_error,
    describe,
    failure_state,
    log_final,
    name_from_template,
    propose,
    retry_pause,
    run_hooks,
)
from riverrun.engine.effects import (
    Call,
    RunLoop,
    Wait,
    drive_async,
    drive_sync,
    run_coroutine_sync,
)
from riverrun.engine.parameters import bind_arguments, jsonable, validate_parameters
from riverrun.engine.results import default_storage
from riverrun.engine.resume import (
    Resume,
    keep_parameters,
    load_flow,
    loading_entrypoint,
    prepare_resume,
    resume_parameters,
)
from riverrun.engine.task_engine import dispatch
from riverrun.exceptions import ParameterTypeError, ResumeError, RiverrunError
from riverrun.futures import RiverrunFuture
from riverrun.logging import (
    RunLogger,
    flush_console,
    install_print_hook,
    print_target,
    run_logger,
    setup_logging,
)
from riverrun.names import (
    SCRIPT_MODULE,
    generate_flow_run_name,
    generate_task_run_name,
    new_flow_run_id,
    new_id,
)
from riverrun.orchestration import check_transition
from riverrun.serializers import get_serializer
from riverrun.settings import Settings, get_settings
from riverrun.states import Completed, Failed, Pending, Retrying, Running, State, StateType
from riverrun.store import get_store
from riverrun.store.protocol import FlowRun, RunStore, TaskRun

if TYPE_CHECKING:
    from riverrun.flows import Flow

__all__ = ["call_flow", "flow_run_loop", "resume_flow_run"]


def call_flow(
    flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, return_state: bool
) -> Any:
    """Run ``flow`` (a subflow when called inside another flow)."""
    if loading_entrypoint.get():
        # A flow called at the top level of a file loaded to resume a run (the seeds'
        # scripts call their flow that way): that call is not what is being resumed.
        setup_logging()
        logging.getLogger("riverrun.engine").info(
            "Skipped the call of flow %r made while loading its file to resume a run",
            flow.name,
        )
        return None
    parent = flow_run_context.get()
    call_index = parent.next_call_index(flow.key) if parent is not None else 0
    loop = flow_run_loop(flow, args, kwargs, parent, call_index)
    return dispatch(loop, is_async=flow.is_async, return_state=return_state)


@functools.cache
def _hostname() -> str:
    # Recorded on every flow run, so that a sweep on this host can tell its pid is gone.
    return socket.gethostname()


def _run_name(flow: Flow[..., Any], parameters: dict[str, Any]) -> str:
    template = flow.flow_run_name
    if template is None:
        return generate_flow_run_name()
    return name_from_template(template, parameters, "flow_run_name", f"flow {flow.name!r}")


def resume_flow_run(
    flow_run_id: str,
    flow: Flow[..., Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> State:
    """Run a failed flow run again as its next attempt (see ``engine.resume``)."""
    settings = get_settings()
    store = get_store(settings)
    resume = prepare_resume(store, flow_run_id)
    if parameters is None:
        parameters = resume_parameters(resume.flow_run, settings.home)
    if flow is None:
        flow = load_flow(resume.flow_run.entrypoint, resume.flow_run)
    loop = flow_run_loop(flow, (), dict(parameters), None, 0, resume)
    # Driven to the end here, async flows too: the caller asked for the final state.
    state: State = run_coroutine_sync(drive_async(loop)) if flow.is_async else drive_sync(loop)
    return state


@functools.cache
def _entrypoint(fn: Any) -> str | None:
    """Where a top-level flow's function can be loaded from again."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname:
        return None
    if module in ("__main__", SCRIPT_MODULE):
        try:
            source = inspect.getsourcefile(fn)
        except TypeError:
            return None
        return f"{os.path.abspath(source)}:{qualname}" if source else None
    return f"{module}:{qualname}"


def _result_defaults(flow: Flow[..., Any], settings: Settings) -> ResultDefaults | None:
    persist = flow.persist_result
    if persist is None:
        persist = settings.results_persist_by_default
    if not persist and flow.result_storage is None and flow.result_serializer is None:
        return None  # the tasks' own options (or caching) decide, with the defaults
    return ResultDefaults(
        persist=persist,
        storage=flow.result_storage or default_storage(settings.home),
        serializer=flow.result_serializer or get_serializer("pickle"),
    )


def flow_run_loop(
    flow: Flow[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    parent: FlowRunContext | None,
    call_index: int,
    resume: Resume | None = None,
) -> RunLoop[State]:
    """One flow run, from creation to a final state, as a generator of effects (or,
    with ``resume``, the next attempt of a flow run that failed)."""
    bound = bind_arguments(flow.signature, args, kwargs, f"Flow {flow.name!r}")
    reuse_key = (flow.key, call_index)
    if parent is not None:
        earlier = parent.reused(reuse_key, bound.arguments)
        if earlier is not None:
            return earlier
        settings, store = parent.settings, parent.store
    else:
        settings = get_settings()
        store = get_store(settings)
    setup_logging(settings)
    invalid: ParameterTypeError | None = None
    if flow.validate_parameters:
        try:
            validate_parameters(flow.name, flow.fn, flow.signature, bound, flow.validation_cache)
        except ParameterTypeError as error:
            invalid = error
    now = datetime.now(UTC)
    tags = list(dict.fromkeys((*current_tags(), *flow.tags)))
    if resume is not None:
        flow_run = resume.flow_run
        flow_run.hostname, flow_run.pid = _hostname(), os.getpid()
    else:
        flow_run = FlowRun(
            id=new_flow_run_id(),
            name=_run_name(flow, bound.arguments),
            flow_name=flow.name,
            parameters=jsonable(bound.arguments),
            tags=tags,
            parent_flow_run_id=parent.flow_run.id if parent is not None else None,
            created=now,
            hostname=_hostname(),
            pid=os.getpid(),
            entrypoint=_entrypoint(flow.fn) if parent is None else None,
        )
        if parent is None:
            flow_run.resume_parameters = keep_parameters(
                bound.arguments, flow_run.id, flow.result_storage or default_storage(settings.home)
            )
    parent_task_run: TaskRun | None = None
    if parent is not None:
        # The subflow appears in its parent as a task run that mirrors its state.
        parent_task_run = TaskRun(
            id=new_id(),
            name=generate_task_run_name(flow.name),
            task_name=flow.name,
            flow_run_id=parent.flow_run.id,
            dynamic_key=call_index,
            tags=tags,
            created=now,
            subflow_run_id=flow_run.id,
        )
        flow_run.parent_task_run_id = parent_task_run.id
        parent_task_run.state = Pending()
        store.record_task_run(parent_task_run)
    engine_logger = run_logger("riverrun.engine", "riverrun.engine", store, flow_run.id, None)
    if resume is not None:
        _restart(store, resume, engine_logger)
    else:
        flow_run.state = Pending()
        store.create_flow_run(flow_run)
        kind = "subflow run" if parent is not None else "flow run"
        engine_logger.engine_event(
            logging.INFO, f"Created {kind} {flow_run.name!r} for flow {flow.name!r}"
        )
    logger = run_logger(
        "riverrun.flow_runs", f"Flow run {flow_run.name!r}", store, flow_run.id, None
    )
    log_prints = flow.log_prints
    if log_prints is None:
        log_prints = parent.log_prints if parent is not None else False
    if log_prints:
        install_print_hook()
    context = FlowRunContext(
        flow=flow,
        flow_run=flow_run,
        settings=settings,
        store=store,
        logger=logger,
        log_prints=log_prints,
        is_async=flow.is_async,
        task_runner=flow.task_runner.duplicate(),
        reuse_completed=bool(flow.policy.retries),
        results=_result_defaults(flow, settings),
        parameters=bound.arguments,
        earlier=resume.earlier if resume is not None else None,
    )
    if flow.is_async:
        # This generator is being driven by drive_async on the flow's loop.
        context.loop = sys.modules["asyncio"].get_running_loop()
    flow_token = flow_run_context.set(context)
    task_token = task_run_context.set(None)
    print_token = print_target.set(logger if log_prints else None)
    try:
        if invalid is not None:
            state: State = Failed(f"Validation of flow parameters failed: {invalid}", data=invalid)
            logger.error("%s", invalid)
        else:
            if parent_task_run is not None:
                propose(store, parent_task_run, Running())
            state = yield from _run(flow, bound.args, bound.kwargs, context)
        propose(store, flow_run, state)
        log_final(logger, state)
        yield from run_hooks(_hooks_for(flow, state), (flow, flow_run, state), logger)
    finally:
        print_target.reset(print_token)
        task_run_context.reset(task_token)
        flow_run_context.reset(flow_token)
        context.task_runner.shutdown(wait=False)
        if parent_task_run is not None and flow_run.state is not None:
            final = flow_run.state
            parent_task_run.run_count = flow_run.run_count
            propose(
                store,
                parent_task_run,
                State(final.type, final.name, message=final.message, data=final.data),
            )
        if parent is None:
            _flush(store, logger)
            flush_console()
    if state.is_completed() and parent is not None:
        parent.remember(reuse_key, state, bound.arguments)
    failure = state.data if isinstance(state.data, BaseException) else None
    if failure is not None and not isinstance(failure, Exception):
        raise failure
    return state


def _restart(store: RunStore, resume: Resume, logger: RunLogger) -> None:
    """Record the next attempt of a failed run, or refuse (someone else resumed it)."""
    flow_run = resume.flow_run
    assert flow_run.state is not None
    check_transition(flow_run.state.type, StateType.SCHEDULED)
    waiting = State(
        StateType.SCHEDULED,
        "AwaitingRetry",
        message=f"Resumed after attempt {flow_run.run_count} ended {flow_run.state.name}",
    )
    if not store.restart_flow_run(flow_run, waiting):
        raise ResumeError(
            f"Flow run {flow_run.name!r} ({flow_run.id}) is no longer failed: another "
            "process is resuming it, or already has"
        )
    reusable = sum(1 for run in resume.earlier.values() if run.result is not None)
    logger.info(
        "Resuming flow run %r (attempt %d): %d completed task run(s) with a persisted "
        "result can be reused",
        flow_run.name,
        flow_run.run_count + 1,
        reusable,
    )


def _flush(store: RunStore, logger: RunLogger) -> None:
    # The run's outcome stands even if its history cannot be written right now: the
    # events stay queued and the store's flusher keeps trying.
    try:
        store.flush()
    except Exception as error:
        logger.error("Could not record the run history yet (%s); will keep trying", error)


def _hooks_for(flow: Flow[..., Any], state: State) -> list[Any]:
    return {
        StateType.COMPLETED: flow.on_completion_hooks,
        StateType.FAILED: flow.on_failure_hooks,
        StateType.CRASHED: flow.on_crashed_hooks,
        StateType.CANCELLED: flow.on_cancellation_hooks,
    }.get(state.type, [])


def _run(
    flow: Flow[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    context: FlowRunContext,
) -> RunLoop[State]:
    flow_run, store, logger = context.flow_run, context.store, context.logger
    label = f"Flow run {flow_run.name!r}"
    condition = None
    if flow.retry_condition_fn is not None:
        user_condition = flow.retry_condition_fn
        condition = lambda error: user_condition(flow, flow_run, Failed(data=error))  # noqa: E731
    attempt = 0
    # A resumed run continues its count of attempts (its retries start afresh).
    earlier_attempts = flow_run.run_count
    try:
        while True:
            attempt += 1
            flow_run.run_count = earlier_attempts + attempt
            context.counters.clear()
            first = attempt == 1 and not earlier_attempts
            running = propose(store, flow_run, Running() if first else Retrying())
            yield from run_hooks(flow.on_running_hooks, (flow, flow_run, running), logger)
            outcome = yield Call(flow.fn, args, kwargs, flow.policy.timeout_seconds)
            assert outcome is not None
            if outcome.timed_out:
                # Tasks not started yet never will be; running ones finish on their own.
                for future in list(context.futures.values()):
                    future.concurrent_future.cancel()
            elif context.has_pending():
                # Also waits for tasks that running tasks submit meanwhile.
                yield Wait((context.all_done(),))
            failed, total = context.take_futures()
            if outcome.error is None:
                state = _returned_state(outcome.value, failed, total)
                if not state.is_failed():
                    return state
                error: BaseException = (
                    state.data
                    if isinstance(state.data, BaseException)
                    else RiverrunError(state.message or "Flow run failed")
                )
            else:
                error = attempt_error(outcome, label, flow.policy)
                state = failure_state("Flow", error)
            if isinstance(error, Exception) and (
                yield from retry_pause(
                    policy=flow.policy,
                    attempt=attempt,
                    error=error,
                    condition=condition,
                    logger=logger,
                    store=store,
                    run=flow_run,
                )
            ):
                continue
            if state.type in (StateType.FAILED, StateType.CRASHED):
                logger.error(
                    "Encountered exception during execution: %s",
                    describe(error),
                    exc_info=(type(error), error, error.__traceback__),
                )
            return state
    except BaseException as error:
        return failure_state("Flow", error)


def _returned_state(value: Any, failed: list[RiverrunFuture[Any]], total: int) -> State:
    """The flow's state when its body returned ``value``.

    A returned ``State`` is the flow's state. Otherwise the flow completed, unless a task
    it submitted failed and the body never looked at that future (so never handled it).
    ``failed`` holds the submitted futures that did not complete; ``total`` counts every
    task submitted in this attempt.
    """
    if isinstance(value, State):
        if value.is_final():
            return value
        return Failed(f"The flow returned {value!r}, which is not a final state")
    if isinstance(value, RiverrunFuture):
        # Returning a future returns what it resolves to.
        state = value.state if value.done() else value.concurrent_future.result()
        value.observed = True
        if not state.is_completed():
            return State(state.type, state.name, message=state.message, data=state.data)
        value = state.result()
    unhandled = []
    for future in failed:
        if future.observed:
            continue
        inner = future.concurrent_future
        if inner.exception() is not None or not inner.result().is_completed():
            unhandled.append(future)
    if unhandled:
        first = unhandled[0].concurrent_future
        problem = first.exception() or first.result().data
        return Failed(
            f"{len(unhandled)}/{total} states failed.",
            data=problem if isinstance(problem, BaseException) else None,
        )
    return Completed(data=value)
