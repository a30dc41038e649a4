"""The task run loop, and the ways a task is called: directly or submitted."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from riverrun.context import (
    FlowRunContext,
    TaskRunContext,
    current_tags,
    flow_run_context,
    task_run_context,
)
from riverrun.engine import results
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
    drive_async,
    drive_sync,
    run_coroutine_sync,
)
from riverrun.engine.parameters import Binder
from riverrun.logging import (
    RunLogger,
    flush_console,
    install_print_hook,
    print_target,
    run_logger,
    setup_logging,
)
from riverrun.names import generate_task_run_name, new_id
from riverrun.states import Cached, Completed, Failed, Pending, Retrying, Running, State
from riverrun.store.protocol import CacheEntry, TaskRun

if TYPE_CHECKING:
    from riverrun.futures import RiverrunFuture
    from riverrun.tasks import Task

__all__ = ["call_task", "dispatch", "submit_task", "task_run_loop"]

_MISS = object()


def call_task(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, return_state: bool
) -> Any:
    """Run ``task`` now. Async tasks give a coroutine where the caller can await it."""
    flow_context = flow_run_context.get()
    call_index = _call_index(task, flow_context)
    loop = task_run_loop(task, args, kwargs, flow_context, call_index, new_id())
    return dispatch(loop, is_async=task.is_async, return_state=return_state)


def dispatch(loop: RunLoop[State], *, is_async: bool, return_state: bool) -> Any:
    """Drive a run loop the way its caller needs.

    A sync function runs on the sync driver, here. An async one gives a coroutine when
    the caller can await it (async code), and otherwise runs to completion so that sync
    code calling an async task or flow gets its result.
    """
    if not is_async:
        state = drive_sync(loop)
    elif _caller_is_async():
        return _await_state(loop, return_state)
    else:
        state = run_coroutine_sync(drive_async(loop))
    return state if return_state else state.result()


def _caller_is_async() -> bool:
    # Outside any run, calling an async function gives a coroutine, as in plain Python;
    # inside a run, the enclosing body's kind decides.
    enclosing: TaskRunContext | FlowRunContext | None = (
        task_run_context.get() or flow_run_context.get()
    )
    return True if enclosing is None else enclosing.is_async


async def _await_state(loop: RunLoop[State], return_state: bool) -> Any:
    state = await drive_async(loop)
    return state if return_state else state.result()


def _call_index(task: Task[..., Any], flow_context: FlowRunContext | None) -> int:
    # Taken in call order on the caller's thread, so a flow retry that makes the same
    # calls gets the same indexes (and reuses what already completed).
    return 0 if flow_context is None else flow_context.next_call_index(task.key)


def submit_task(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> RiverrunFuture[Any]:
    """Start ``task`` on the flow's task runner (or a shared one outside flows)."""
    from riverrun.futures import RiverrunFuture
    from riverrun.task_runners import default_task_runner

    flow_context = flow_run_context.get()
    runner = flow_context.task_runner if flow_context is not None else default_task_runner()
    task_run_id = new_id()
    loop = task_run_loop(
        task, args, kwargs, flow_context, _call_index(task, flow_context), task_run_id
    )
    body: Callable[[], State]
    if task.is_async:
        # The coroutine is made on the worker, so a task cancelled before it starts
        # leaves no coroutine behind that was never awaited.
        body = lambda: run_coroutine_sync(drive_async(loop))  # noqa: E731
    else:
        body = lambda: drive_sync(loop)  # noqa: E731
    future = runner.submit(contextvars.copy_context().run, body)
    wrapped: RiverrunFuture[Any] = RiverrunFuture(future, task_run_id=task_run_id, name=task.name)
    if flow_context is not None:
        flow_context.futures.append(wrapped)
    return wrapped


def _run_name(task: Task[..., Any], parameters: dict[str, Any]) -> tuple[str, str]:
    """The run's name and the label its log lines carry."""
    template = task.task_run_name
    if template is None:
        return generate_task_run_name(task.name), task.name
    name = name_from_template(template, parameters, "task_run_name", f"task {task.name!r}")
    return name, name


def _inherited_log_prints(task: Task[..., Any], flow_context: FlowRunContext | None) -> bool:
    if task.log_prints is not None:
        return task.log_prints
    enclosing = task_run_context.get() or flow_context
    return enclosing.log_prints if enclosing is not None else False


def task_run_loop(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_context: FlowRunContext | None,
    call_index: int,
    task_run_id: str,
) -> RunLoop[State]:
    """One task run, from Pending to a final state, as a generator of effects."""
    binder = task.binder
    if binder is None:
        binder = task.binder = Binder(task.signature, f"Task {task.name!r}")
    parameters = binder.arguments(args, kwargs)
    reuse_key = (task.key, call_index)
    if flow_context is not None:
        earlier = flow_context.reused(reuse_key, parameters)
        if earlier is not None:
            return earlier
    if flow_context is None:
        store = flow_run_id = None
        setup_logging()
    else:
        store, flow_run_id = flow_context.store, flow_context.flow_run.id
    name, label = _run_name(task, parameters)
    task_run = TaskRun(
        id=task_run_id,
        name=name,
        task_name=task.name,
        flow_run_id=flow_run_id,
        dynamic_key=call_index,
        tags=list(dict.fromkeys((*current_tags(), *task.tags))),
        created=datetime.now(UTC),
    )
    logger = run_logger(
        "riverrun.task_runs", f"Task run {label!r}", store, flow_run_id, task_run.id
    )
    log_prints = _inherited_log_prints(task, flow_context)
    context = TaskRunContext(
        task=task,
        task_run=task_run,
        parameters=parameters,
        logger=logger,
        log_prints=log_prints,
        is_async=task.is_async,
        flow_run_context=flow_context,
    )
    if flow_context is not None:
        task_run.cache_key = _cache_key(task, context, logger)
    task_run.state = Pending()
    if store is not None:
        store.record_task_run(task_run)
    if log_prints:
        install_print_hook()
    context_token = task_run_context.set(context)
    print_token = print_target.set(logger if log_prints else None)
    try:
        state = yield from _run(task, args, kwargs, context, label)
    finally:
        print_target.reset(print_token)
        task_run_context.reset(context_token)
        if flow_context is None:
            flush_console()
    if state.is_completed() and flow_context is not None:
        flow_context.remember(reuse_key, state, parameters)
    return state


def _run(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    context: TaskRunContext,
    label: str,
) -> RunLoop[State]:
    task_run, logger = context.task_run, context.logger
    flow_context = context.flow_run_context
    store = flow_context.store if flow_context is not None else None
    state: State | None = None
    if task_run.cache_key is not None and not task.refresh_cache:
        assert flow_context is not None
        value = _read_cache(flow_context, task_run.cache_key, logger)
        if value is not _MISS:
            state = Cached(data=value)
    condition = None
    if task.retry_condition_fn is not None:
        user_condition = task.retry_condition_fn
        condition = lambda error: user_condition(task, task_run, Failed(data=error))  # noqa: E731
    attempt = 0
    try:
        while state is None:
            attempt += 1
            task_run.run_count = attempt
            propose(store, task_run, Running() if attempt == 1 else Retrying())
            outcome = yield Call(task.fn, args, kwargs, task.policy.timeout_seconds)
            assert outcome is not None
            if outcome.error is None:
                state = Completed(data=outcome.value)
                break
            error = attempt_error(outcome, f"Task run {label!r}", task.policy)
            if isinstance(error, Exception) and (
                yield from retry_pause(
                    policy=task.policy,
                    attempt=attempt,
                    error=error,
                    condition=condition,
                    logger=logger,
                    store=store,
                    run=task_run,
                )
            ):
                continue
            state = failure_state("Task", error)
    except BaseException as error:
        # Interrupted outside the body (during a retry pause): record, then let it go on.
        state = failure_state("Task", error)
    if state.is_completed() and state.name != "Cached" and task_run.cache_key is not None:
        assert flow_context is not None
        _write_cache(task, flow_context, task_run.cache_key, state.data, logger)
    failure = state.data if isinstance(state.data, BaseException) else None
    if failure is not None:
        logger.error(
            "Task run failed with exception: %s",
            describe(failure),
            exc_info=(type(failure), failure, failure.__traceback__),
        )
    propose(store, task_run, state)
    log_final(logger, state)
    hooks = task.on_completion_hooks if state.is_completed() else task.on_failure_hooks
    if hooks and (state.is_completed() or state.is_failed()):
        yield from run_hooks(hooks, (task, task_run, state), logger)
    if failure is not None and not isinstance(failure, Exception):
        raise failure
    return state


def _cache_key(task: Task[..., Any], context: TaskRunContext, logger: RunLogger) -> str | None:
    if task.cache_key_fn is None:
        return None
    try:
        key = task.cache_key_fn(context, dict(context.parameters))
    except Exception as error:
        logger.warning("cache_key_fn raised %s; this run is not cached", describe(error))
        return None
    if key is not None and not isinstance(key, str):
        logger.warning("cache_key_fn returned %r, not a string; this run is not cached", key)
        return None
    return key


def _read_cache(flow_context: FlowRunContext, key: str, logger: RunLogger) -> Any:
    entry = flow_context.store.read_cache_entry(key)
    if entry is None:
        return _MISS
    if entry.expiration is not None and entry.expiration <= datetime.now(UTC):
        return _MISS
    try:
        return results.read_result(flow_context.settings.home, entry.location)
    except FileNotFoundError:
        return _MISS
    except Exception as error:
        logger.warning("Cached result for key %s is unreadable (%s); running", key, error)
        return _MISS


def _write_cache(
    task: Task[..., Any], flow_context: FlowRunContext, key: str, value: Any, logger: RunLogger
) -> None:
    now = datetime.now(UTC)
    try:
        location = results.write_result(flow_context.settings.home, key, value)
        flow_context.store.write_cache_entry(
            CacheEntry(
                key=key,
                location=location,
                expiration=now + task.cache_expiration if task.cache_expiration else None,
                created=now,
            )
        )
    except Exception as error:
        logger.warning("Could not cache the result (%s); it will be computed again", error)
