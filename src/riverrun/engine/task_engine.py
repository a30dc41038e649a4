"""The task run loop, and the ways a task is called: directly or submitted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from riverrun.context import (
    FlowRunContext,
    TaskRunContext,
    current_tags,
    flow_run_context,
    task_run_context,
)
from riverrun.engine.caching import (
    MISS,
    KeyLock,
    ResultPlan,
    cache_key,
    inputs_digest,
    plan_results,
    read_cache,
    write_cache,
    write_persisted,
)
from riverrun.engine.concurrency import release_tag_slots, take_tag_slots
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
from riverrun.engine.dependencies import Upstreams, find_upstreams, resolve
from riverrun.engine.effects import (
    Call,
    RunLoop,
    Wait,
    drive_async,
    drive_sync,
    run_coroutine_sync,
)
from riverrun.engine.parameters import Binder
from riverrun.engine.resume import take_earlier
from riverrun.exceptions import InvalidResultStorageKeyError
from riverrun.logging import (
    flush_console,
    install_print_hook,
    print_target,
    run_logger,
    setup_logging,
)
from riverrun.names import generate_task_run_name, new_id
from riverrun.states import Cached, Completed, Failed, Pending, Retrying, Running, State
from riverrun.store.protocol import TaskRun

if TYPE_CHECKING:
    from riverrun.logging import RunLogger
    from riverrun.store.protocol import RunStore
    from riverrun.tasks import Task

__all__ = [
    "TaskCall",
    "await_upstreams",
    "call_task",
    "dispatch",
    "prepare_call",
    "ready_arguments",
    "record_not_ready",
    "record_pending",
    "run_call",
    "task_run_loop",
]


@dataclass(slots=True, eq=False)
class TaskCall:
    """One task run, decided before it starts: its arguments, record and logger label.

    ``encode_result`` is set when the run happens in another process: a result is
    serialised as soon as the body returns (kept in ``encoded_result``), so one that
    cannot be sent back fails the run instead of being recorded as Completed.
    """

    task: Task[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    parameters: dict[str, Any]
    task_run: TaskRun
    label: str
    log_prints: bool
    flow_context: FlowRunContext | None
    reuse_key: tuple[str, int]
    encode_result: Callable[[Any], bytes] | None = None
    encoded_result: bytes | None = None

    @property
    def store(self) -> RunStore | None:
        """Where the run is recorded (nowhere outside a flow)."""
        return self.flow_context.store if self.flow_context is not None else None

    def logger(self) -> RunLogger:
        """The run's logger: lines labelled with the run, recorded with its ids."""
        return run_logger(
            "riverrun.task_runs",
            f"Task run {self.label!r}",
            self.store,
            self.task_run.flow_run_id,
            self.task_run.id,
        )


def call_task(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    return_state: bool,
    wait_for: Any = None,
) -> Any:
    """Run ``task`` now. Async tasks give a coroutine where the caller can await it.

    Futures among the arguments are waited for first and replaced by their results.
    """
    flow_context = flow_run_context.get()
    call_index = next_call_index(task, flow_context)
    task_run_id = new_id()
    upstreams = find_upstreams(args, kwargs, wait_for) if args or kwargs or wait_for else None
    ids = None
    if upstreams is not None:
        if task.is_async and _caller_is_async():
            return _await_upstreams_then_run(
                task, args, kwargs, flow_context, call_index, task_run_id, upstreams, return_state
            )
        _wait_sync(upstreams)
        ready = ready_arguments(
            task, args, kwargs, flow_context, call_index, task_run_id, upstreams
        )
        if isinstance(ready, State):
            return ready if return_state else ready.result()
        args, kwargs, ids = ready
    loop = task_run_loop(task, args, kwargs, flow_context, call_index, task_run_id, ids)
    return dispatch(loop, is_async=task.is_async, return_state=return_state)


def ready_arguments(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_context: FlowRunContext | None,
    call_index: int,
    task_run_id: str,
    upstreams: Upstreams | None,
) -> tuple[tuple[Any, ...], dict[str, Any], list[str] | None] | State:
    """Once every upstream of a call is done: its arguments with their results put in,
    and the upstream ids to record; or, when one did not complete, the run's NotReady
    state, recorded."""
    if upstreams is None:
        return args, kwargs, None
    resolved = resolve(args, kwargs, upstreams)
    if isinstance(resolved, State):
        return record_not_ready(
            task, args, kwargs, flow_context, call_index, task_run_id, upstreams, resolved
        )
    return resolved[0], resolved[1], upstreams.ids


async def await_upstreams(upstreams: Upstreams) -> None:
    """Wait, without blocking the event loop, until every upstream is done."""
    import asyncio

    if upstreams.futures:
        await asyncio.wait(
            [asyncio.wrap_future(f.concurrent_future) for f in upstreams.futures.values()]
        )


def _wait_sync(upstreams: Upstreams) -> None:
    import concurrent.futures

    for future in upstreams.futures.values():
        future._check_not_blocking_own_loop("calling a task with it")
    concurrent.futures.wait([future.concurrent_future for future in upstreams.futures.values()])


async def _await_upstreams_then_run(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_context: FlowRunContext | None,
    call_index: int,
    task_run_id: str,
    upstreams: Upstreams,
    return_state: bool,
) -> Any:
    await await_upstreams(upstreams)
    ready = ready_arguments(task, args, kwargs, flow_context, call_index, task_run_id, upstreams)
    if isinstance(ready, State):
        state = ready
    else:
        call_args, call_kwargs, ids = ready
        loop = task_run_loop(
            task, call_args, call_kwargs, flow_context, call_index, task_run_id, ids
        )
        state = await drive_async(loop)
    return state if return_state else state.result()


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


def next_call_index(task: Task[..., Any], flow_context: FlowRunContext | None) -> int:
    # Taken in call order on the caller's thread, so a flow retry that makes the same
    # calls gets the same indexes (and reuses what already completed).
    return 0 if flow_context is None else flow_context.next_call_index(task.key)


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


def _tags_of(task: Task[..., Any]) -> list[str]:
    inherited = current_tags()
    if not inherited:
        return list(task.tags)
    return list(dict.fromkeys((*inherited, *task.tags)))


def prepare_call(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_context: FlowRunContext | None,
    call_index: int,
    task_run_id: str,
    upstream_ids: list[str] | None = None,
) -> TaskCall | State:
    """Bind the arguments and build the run's record; or, when a retry of the flow
    makes a call that already completed, that call's state.

    Raises:
        TypeError: the arguments do not fit the task's signature.
    """
    binder = task.binder
    if binder is None:
        binder = task.binder = Binder(task.signature, f"Task {task.name!r}")
    parameters = binder.arguments(args, kwargs)
    reuse_key = (task.key, call_index)
    if flow_context is not None:
        earlier = flow_context.reused(reuse_key, parameters)
        if earlier is not None:
            return earlier
    name, label = _run_name(task, parameters)
    # By position where the order is fixed (each keyword argument of a dataclass's
    # __init__ costs about 70 ns, and a task run makes these two objects): the run's id,
    # name, task name, flow run id, dynamic key and tags; then TaskCall's fields.
    task_run = TaskRun(
        task_run_id,
        name,
        task.name,
        flow_context.flow_run.id if flow_context is not None else None,
        call_index,
        _tags_of(task),
        upstream_task_run_ids=upstream_ids or [],
        task_key=task.key,
    )
    return TaskCall(
        task,
        args,
        kwargs,
        parameters,
        task_run,
        label,
        _inherited_log_prints(task, flow_context),
        flow_context,
        reuse_key,
    )


def record_pending(call: TaskCall) -> None:
    """Record the run as Pending, created at that state's time (outside a flow there
    is no history; logs go to the console only)."""
    state = call.task_run.state = Pending()
    call.task_run.created = state.timestamp
    if call.flow_context is None:
        setup_logging()
    else:
        call.flow_context.store.record_task_run(call.task_run)


def record_not_ready(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_context: FlowRunContext | None,
    call_index: int,
    task_run_id: str,
    upstreams: Upstreams,
    state: State,
) -> State:
    """Record a run that never starts because an upstream did not complete."""
    call = prepare_call(task, args, kwargs, flow_context, call_index, task_run_id, upstreams.ids)
    if isinstance(call, State):
        return call
    record_pending(call)
    propose(call.store, call.task_run, state)
    log_final(call.logger(), state)
    return state


def task_run_loop(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_context: FlowRunContext | None,
    call_index: int,
    task_run_id: str,
    upstream_ids: list[str] | None = None,
) -> RunLoop[State]:
    """One task run, from Pending to a final state, as a generator of effects."""
    call = prepare_call(task, args, kwargs, flow_context, call_index, task_run_id, upstream_ids)
    if isinstance(call, State):
        return call
    record_pending(call)
    return (yield from run_call(call))


def run_call(call: TaskCall) -> RunLoop[State]:
    """Run a prepared, recorded call to its final state."""
    task, task_run, flow_context = call.task, call.task_run, call.flow_context
    logger = call.logger()
    # By position, as prepare_call builds its records (one per task run).
    context = TaskRunContext(
        task, task_run, call.parameters, logger, call.log_prints, task.is_async, flow_context
    )
    plan: ResultPlan | InvalidResultStorageKeyError | None = None
    if flow_context is not None and (
        task.cache_policy is not None
        or task.persist_result
        or (task.persist_result is None and flow_context.results is not None)
    ):
        try:
            plan = plan_results(task, flow_context, call.parameters, task_run)
        except InvalidResultStorageKeyError as error:
            plan = error
        if task.cache_policy is not None:
            task_run.cache_key = cache_key(task, context, logger)
    if call.log_prints:
        install_print_hook()
    context_token = task_run_context.set(context)
    # The print target changes only when this run logs prints or an enclosing one did.
    print_token = (
        print_target.set(logger if call.log_prints else None)
        if call.log_prints or print_target.get() is not None
        else None
    )
    try:
        state = yield from _run(call, context, plan)
    finally:
        if print_token is not None:
            print_target.reset(print_token)
        task_run_context.reset(context_token)
        if flow_context is None:
            flush_console()
    if flow_context is not None and flow_context.reuse_completed and state.is_completed():
        flow_context.remember(call.reuse_key, state, call.parameters)
    return state


def _reused_state(
    call: TaskCall, flow_context: FlowRunContext, logger: RunLogger, plan: ResultPlan | None
) -> State | None:
    """A Cached state when an earlier attempt of a resumed flow run, or the cache, has
    this call's result (``task_run.result`` then names it)."""
    task, task_run = call.task, call.task_run
    if flow_context.earlier:
        found = take_earlier(flow_context, task, call.reuse_key, call.parameters, logger)
        if found is not None:
            value, earlier = found
            task_run.result = earlier.result
            return Cached(data=value, message=f"Result of task run {earlier.name!r} ({earlier.id})")
    key = task_run.cache_key
    if key is not None and plan is not None and not task.refresh_cache:
        hit = read_cache(flow_context, key, logger)
        if hit is not MISS:
            task_run.result = hit[1]
            return Cached(data=hit[0])
    return None


def _run(
    call: TaskCall, context: TaskRunContext, plan: ResultPlan | InvalidResultStorageKeyError | None
) -> RunLoop[State]:
    task, label = call.task, call.label
    args, kwargs = call.args, call.kwargs
    task_run, logger = context.task_run, context.logger
    flow_context = context.flow_run_context
    store = call.store
    state: State | None = None
    lock: KeyLock | None = None
    condition = None
    if task.retry_condition_fn is not None:
        user_condition = task.retry_condition_fn
        condition = lambda error: user_condition(task, task_run, Failed(data=error))  # noqa: E731
    attempt = 0
    tag_slots = None
    try:
        if isinstance(plan, InvalidResultStorageKeyError):
            # Refused before the body runs: nothing is computed that could not be kept.
            state = failure_state("Task", plan)
            plan = None
        elif flow_context is not None and (flow_context.earlier or task_run.cache_key is not None):
            state = _reused_state(call, flow_context, logger, plan)
            if state is None and plan is not None and task_run.cache_key is not None:
                # One run computes a key at a time; the others wait, then read its entry.
                lock = _key_lock(plan, task_run.cache_key, logger)
                if lock is not None and not lock.try_acquire():
                    logger.info("Waiting for another run computing the same cache key")
                    yield Wait((lock.acquire_later(),))
                    state = _reused_state(call, flow_context, logger, plan)
        if state is None and task_run.tags:
            tag_slots = yield from take_tag_slots(store, task_run, task.is_async, logger)
        while state is None:
            attempt += 1
            task_run.run_count = attempt
            propose(store, task_run, Running() if attempt == 1 else Retrying())
            outcome = yield Call(task.fn, args, kwargs, task.policy.timeout_seconds)
            assert outcome is not None
            if outcome.error is None:
                state = _completed(call, outcome.value)
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
        if state.is_completed() and state.name != "Cached" and plan is not None:
            _persist(call, flow_context, plan, state.data, logger)
    except BaseException as error:
        # Interrupted outside the body (during a retry pause or a wait for the lock):
        # record, then let it go on.
        state = failure_state("Task", error)
    finally:
        if lock is not None:
            lock.release()
    try:
        failure = state.data if isinstance(state.data, BaseException) else None
        if failure is not None:
            logger.error(
                "Task run failed with exception: %s",
                describe(failure),
                exc_info=(type(failure), failure, failure.__traceback__),
            )
        propose(store, task_run, state)
    finally:
        if tag_slots is not None:
            release_tag_slots(tag_slots)
    log_final(logger, state)
    hooks = task.on_completion_hooks if state.is_completed() else task.on_failure_hooks
    if hooks and (state.is_completed() or state.is_failed()):
        yield from run_hooks(hooks, (task, task_run, state), logger)
    if failure is not None and not isinstance(failure, Exception):
        raise failure
    return state


def _key_lock(plan: ResultPlan, key: str, logger: RunLogger) -> KeyLock | None:
    try:
        return KeyLock(plan.storage, key)
    except OSError as error:
        # The result cannot be written there either; that is reported when persisting.
        logger.warning("Cannot lock the cache key in %s (%s); not waiting", plan.storage, error)
        return None


def _persist(
    call: TaskCall,
    flow_context: FlowRunContext | None,
    plan: ResultPlan,
    value: Any,
    logger: RunLogger,
) -> None:
    """Keep a completed run's result on disk, and its cache entry when it has a key."""
    assert flow_context is not None
    task_run = call.task_run
    planned = plan.ref(task_run, inputs_digest(call.parameters), call.task.identity())
    ref = write_persisted(planned, value, plan, logger)
    if ref is None:
        return
    task_run.result = ref.encode()
    if task_run.cache_key is not None:
        write_cache(call.task, flow_context, task_run.cache_key, ref, logger)


def _completed(call: TaskCall, value: Any) -> State:
    if call.encode_result is None:
        return Completed(data=value)
    try:
        call.encoded_result = call.encode_result(value)
    except Exception as error:
        from riverrun.exceptions import TaskRunnerError

        problem = TaskRunnerError(
            f"The result of task run {call.label!r} ({type(value).__name__}) cannot be sent "
            f"back to the flow: {describe(error)}"
        )
        return failure_state("Task", problem)
    return Completed(data=value)
