"""``task.submit`` and ``task.map``: start task runs on the flow's task runner.

Where a submitted run executes:
- an async task submitted from async code: as an asyncio task on the caller's loop;
- otherwise on the flow's runner: a thread of the pool by default, or a worker process
  (``remote`` runners) that gets the run pickled.

A run whose arguments hold futures starts only when they are done (a callback, no
thread waits for it); its arguments then receive their results.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from riverrun.annotations import allow_failure, unmapped
from riverrun.context import FlowRunContext, flow_run_context, task_run_context
from riverrun.engine.dependencies import Upstreams, find_upstreams
from riverrun.engine.dispatcher import cancel_with, dispatch, set_exception, set_result
from riverrun.engine.effects import RunLoop, drive_async, drive_sync, run_coroutine_sync
from riverrun.engine.task_engine import (
    await_upstreams,
    next_call_index,
    prepare_call,
    ready_arguments,
    task_run_loop,
)
from riverrun.futures import RiverrunFuture, RiverrunFutureList
from riverrun.names import new_id
from riverrun.states import State

if TYPE_CHECKING:
    import asyncio

    from riverrun.task_runners import TaskRunner
    from riverrun.tasks import Task

__all__ = ["map_task", "submit_task"]

# asyncio keeps only weak references to tasks: these are the ones still running.
_loop_tasks: set[asyncio.Task[State]] = set()


def submit_task(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None = None,
) -> RiverrunFuture[Any]:
    """Start ``task`` on the flow's task runner (or a shared one outside flows)."""
    flow_context = flow_run_context.get()
    if flow_context is not None:
        runner = flow_context.task_runner
    else:
        from riverrun.task_runners import default_task_runner

        runner = default_task_runner()
    task_run_id = new_id()
    call_index = next_call_index(task, flow_context)
    upstreams = find_upstreams(args, kwargs, wait_for) if args or kwargs or wait_for else None
    event_loop = _flow_loop(flow_context) if task.is_async and not runner.remote else None
    if event_loop is not None:
        future = _on_loop(
            event_loop, task, args, kwargs, flow_context, call_index, task_run_id, upstreams
        )
    elif upstreams is None and not runner.remote:
        # The common case, kept short: the whole run happens on a pool thread.
        loop = task_run_loop(task, args, kwargs, flow_context, call_index, task_run_id)
        inner = runner.submit(contextvars.copy_context().run, _driver(task), loop)
        future = RiverrunFuture(inner, task_run_id=task_run_id, name=task.name)
    else:
        if runner.remote and flow_context is None:
            raise RuntimeError(f"{runner!r} runs tasks of a flow; call {task.name}.submit in one")
        result: Future[State] = Future()
        start = _Start(
            task, args, kwargs, flow_context, call_index, task_run_id, upstreams, runner, result
        )
        if upstreams is None or not upstreams.futures:
            start()
        else:
            _when_all_done(upstreams, start)
        future = RiverrunFuture(result, task_run_id=task_run_id, name=task.name)
    if flow_context is not None:
        flow_context.track(future)
    return future


def _driver(task: Task[..., Any]) -> Callable[[RunLoop[State]], State]:
    """What a pool thread runs a task's run loop with."""
    return _drive_async_to_end if task.is_async else drive_sync


def _drive_async_to_end(loop: RunLoop[State]) -> State:
    # The coroutine is made on the worker, so a task cancelled before it starts leaves
    # no coroutine behind that was never awaited.
    return run_coroutine_sync(drive_async(loop))


def _flow_loop(flow_context: FlowRunContext | None) -> asyncio.AbstractEventLoop | None:
    """The loop to run an async task on: the running loop when it lives as long as the
    task may (the async flow's own loop, which the flow keeps running until every
    submitted task is done; or, outside flows and tasks, the user's loop). A loop some
    sync code started just to run one async task would stop with it, so tasks
    submitted from there go to the runner instead."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return None
    running: asyncio.AbstractEventLoop | None = aio._get_running_loop()
    if running is None:
        return None
    if flow_context is not None:
        return running if running is flow_context.loop else None
    return running if task_run_context.get() is None else None


def _on_loop(
    event_loop: asyncio.AbstractEventLoop,
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    flow_context: FlowRunContext | None,
    call_index: int,
    task_run_id: str,
    upstreams: Upstreams | None,
) -> RiverrunFuture[Any]:
    """Run an async task as an asyncio task on the caller's loop."""

    async def run() -> State:
        if upstreams is not None:
            await await_upstreams(upstreams)
        ready = ready_arguments(
            task, args, kwargs, flow_context, call_index, task_run_id, upstreams
        )
        if isinstance(ready, State):
            return ready
        call_args, call_kwargs, ids = ready
        loop = task_run_loop(
            task, call_args, call_kwargs, flow_context, call_index, task_run_id, ids
        )
        return await drive_async(loop)

    aio_task = event_loop.create_task(run())
    _loop_tasks.add(aio_task)
    result: Future[State] = Future()

    def settle(done: asyncio.Task[State]) -> None:
        _loop_tasks.discard(done)
        if done.cancelled():
            result.cancel()
        elif done.exception() is not None:
            set_exception(result, done.exception())  # type: ignore[arg-type]
        else:
            set_result(result, done.result())

    def cancel_task(done: Future[State]) -> None:
        # The flow cancels what it no longer waits for (it timed out).
        if done.cancelled() and not aio_task.done():
            event_loop.call_soon_threadsafe(aio_task.cancel)

    aio_task.add_done_callback(settle)
    result.add_done_callback(cancel_task)
    return RiverrunFuture(result, task_run_id=task_run_id, name=task.name, loop=event_loop)


class _Start:
    """Starts a run whose upstreams are done (or that runs remotely): resolves the
    arguments, then hands the run to the runner; its state lands in ``result``."""

    __slots__ = (
        "args",
        "call_index",
        "context",
        "flow_context",
        "kwargs",
        "result",
        "runner",
        "task",
        "task_run_id",
        "upstreams",
    )

    def __init__(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        flow_context: FlowRunContext | None,
        call_index: int,
        task_run_id: str,
        upstreams: Upstreams | None,
        runner: TaskRunner,
        result: Future[State],
    ) -> None:
        self.task, self.args, self.kwargs = task, args, kwargs
        self.flow_context, self.call_index, self.task_run_id = flow_context, call_index, task_run_id
        self.upstreams, self.runner, self.result = upstreams, runner, result
        # The submitter's context (its flow, task and tags), taken now.
        self.context = contextvars.copy_context()

    def __call__(self) -> None:
        if self.result.done():
            return  # cancelled (the flow ended) while waiting for its upstreams
        try:
            self.context.run(self._start)
        except BaseException as error:
            set_exception(self.result, error)

    def _start(self) -> None:
        ready = ready_arguments(
            self.task,
            self.args,
            self.kwargs,
            self.flow_context,
            self.call_index,
            self.task_run_id,
            self.upstreams,
        )
        if isinstance(ready, State):
            set_result(self.result, ready)
            return
        args, kwargs, ids = ready
        if not self.runner.remote:
            loop = task_run_loop(
                self.task, args, kwargs, self.flow_context, self.call_index, self.task_run_id, ids
            )
            inner = self.runner.submit(contextvars.copy_context().run, _driver(self.task), loop)
            inner.add_done_callback(self._copy)
            cancel_with(self.result, inner)
            return
        from riverrun.engine.remote import launch_remote

        call = prepare_call(
            self.task, args, kwargs, self.flow_context, self.call_index, self.task_run_id, ids
        )
        if isinstance(call, State):
            self.result.set_result(call)  # a retry of the flow reuses an earlier run
            return
        launch_remote(call, self.runner, self.result)

    def _copy(self, inner: Future[State]) -> None:
        if inner.cancelled():
            self.result.cancel()
        elif inner.exception() is not None:
            set_exception(self.result, inner.exception())  # type: ignore[arg-type]
        else:
            set_result(self.result, inner.result())


def _when_all_done(upstreams: Upstreams, then: Callable[[], None]) -> None:
    """Hand ``then`` to the dispatcher once every upstream is done (never run it on
    the thread that finished the last one: see ``engine.dispatcher``)."""
    import threading

    futures = [future.concurrent_future for future in upstreams.futures.values()]
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(_: Future[State]) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            dispatch(then)

    for future in futures:
        future.add_done_callback(one_done)


def map_task(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None = None,
) -> RiverrunFutureList[Any]:
    """Submit ``task`` once per item of its iterable arguments (zipped together).

    Arguments wrapped in ``unmapped`` are passed whole to every call, as are strings,
    bytes, mappings and futures.

    Raises:
        TypeError: no argument is iterable.
        ValueError: the iterables have different lengths.
    """
    names = list(task.signature.parameters)
    mapped: dict[int | str, list[Any]] = {}
    for index, value in enumerate(args):
        if _is_mapped(value):
            mapped[index] = list(value)
    for name, value in kwargs.items():
        if _is_mapped(value):
            mapped[name] = list(value)
    if not mapped:
        raise TypeError(
            f"{task.name}.map needs at least one iterable argument to map over "
            "(wrap constants in unmapped(...))"
        )
    lengths = {len(items) for items in mapped.values()}
    if len(lengths) > 1:
        described = ", ".join(
            f"{_argument_name(key, names)} has {len(items)}" for key, items in mapped.items()
        )
        raise ValueError(f"{task.name}.map got iterables of different lengths: {described}")
    if wait_for is not None and not isinstance(wait_for, RiverrunFuture | allow_failure):
        wait_for = list(wait_for)  # every run waits for all of them, not just the first
    futures: RiverrunFutureList[Any] = RiverrunFutureList()
    for position in range(lengths.pop()):
        call_args = tuple(
            mapped[index][position] if index in mapped else value
            for index, value in enumerate(args)
        )
        call_kwargs = {
            name: mapped[name][position] if name in mapped else value
            for name, value in kwargs.items()
        }
        futures.append(submit_task(task, call_args, call_kwargs, wait_for))
    return futures


def _is_mapped(value: Any) -> bool:
    if isinstance(value, unmapped | str | bytes | bytearray | Mapping | RiverrunFuture):
        return False
    return isinstance(value, Iterable)


def _argument_name(key: int | str, names: list[str]) -> str:
    if isinstance(key, str):
        return key
    return names[key] if key < len(names) else f"argument {key}"
