"""The effects a run loop yields, and the sync and async drivers that perform them."""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from riverrun.exceptions import TimeoutSignal

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "Call",
    "Hook",
    "Outcome",
    "RunLoop",
    "Sleep",
    "Wait",
    "drive_async",
    "drive_sync",
    "loop_is_running",
    "run_coroutine_sync",
]

T = TypeVar("T")


@dataclass(slots=True)
class Call:
    """Call the user's function; with ``timeout`` the call is abandoned when it expires."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    timeout: float | None


@dataclass(slots=True)
class Sleep:
    seconds: float


@dataclass(slots=True)
class Hook:
    """Call a state hook (sync or async); its errors are returned, never raised."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(slots=True)
class Wait:
    """Block until these concurrent futures are done."""

    futures: tuple[Future[Any], ...]


@dataclass(slots=True)
class Outcome:
    """What a ``Call`` or ``Hook`` produced: a value, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False


Effect = Call | Sleep | Hook | Wait
RunLoop = Generator[Effect, Outcome | None, T]


def drive_sync(loop: RunLoop[T]) -> T:
    """Run ``loop`` to completion on this thread."""
    outcome: Outcome | None = None
    raised: BaseException | None = None
    while True:
        try:
            effect = loop.throw(raised) if raised is not None else loop.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        raised = outcome = None
        try:
            if type(effect) is Call:
                outcome = _call_sync(effect)
            elif type(effect) is Sleep:
                time.sleep(effect.seconds)
            elif type(effect) is Hook:
                outcome = _hook_sync(effect)
            else:
                assert type(effect) is Wait
                for future in effect.futures:
                    future.exception()
        except BaseException as error:
            # Interrupted while sleeping or waiting: let the run loop record it.
            raised = error


async def drive_async(loop: RunLoop[T]) -> T:
    """Run ``loop`` to completion on the running event loop."""
    import asyncio

    outcome: Outcome | None = None
    raised: BaseException | None = None
    while True:
        try:
            effect = loop.throw(raised) if raised is not None else loop.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        raised = outcome = None
        try:
            if type(effect) is Call:
                outcome = await _call_async(effect)
            elif type(effect) is Sleep:
                await asyncio.sleep(effect.seconds)
            elif type(effect) is Hook:
                outcome = await _hook_async(effect)
            else:
                assert type(effect) is Wait
                if effect.futures:
                    await asyncio.wait([asyncio.wrap_future(f) for f in effect.futures])
        except BaseException as error:
            raised = error


def _call_sync(call: Call) -> Outcome:
    if call.timeout is not None:
        return _call_in_thread_with_timeout(call)
    try:
        return Outcome(call.fn(*call.args, **call.kwargs))  # the value, by position: per task
    except BaseException as error:
        return Outcome(error=error)


async def _call_async(call: Call) -> Outcome:
    import asyncio

    if call.timeout is None:
        try:
            return Outcome(value=await call.fn(*call.args, **call.kwargs))
        except BaseException as error:
            return Outcome(error=error)
    scope: asyncio.Timeout | None = None
    try:
        async with asyncio.timeout(call.timeout) as scope:
            value = await call.fn(*call.args, **call.kwargs)
        return Outcome(value=value)
    except BaseException as error:
        # Only our own deadline is a timeout; a TimeoutError the body raised itself
        # (asyncio.wait_for inside it, an HTTP client's) is an ordinary failure.
        expired = scope is not None and scope.expired() and isinstance(error, TimeoutError)
        return Outcome(error=error, timed_out=expired)


def _call_in_thread_with_timeout(call: Call) -> Outcome:
    """Run a sync body in its own thread and stop waiting for it when time is up.

    The caller gets its answer on time whatever the body does. The body's thread is then
    interrupted by raising ``TimeoutSignal`` in it, which Python delivers at the next
    bytecode the thread executes: a body blocked inside C (``time.sleep``, a socket read
    without a timeout, a long NumPy call) stops only when that call returns.
    """
    context = contextvars.copy_context()
    box: list[Outcome] = []
    lock = threading.Lock()
    finished = threading.Event()

    def target() -> None:
        try:
            try:
                box.append(Outcome(value=context.run(call.fn, *call.args, **call.kwargs)))
            except BaseException as error:
                box.append(Outcome(error=error))
            finally:
                with lock:
                    finished.set()
        except TimeoutSignal:
            pass  # arrived after the caller gave up on this body: nobody is waiting

    worker = threading.Thread(target=target, name="riverrun-timed-body", daemon=True)
    worker.start()
    if finished.wait(call.timeout):
        return box[0]
    with lock:
        if box:
            return box[0]  # finished right at the deadline: keep its real outcome
    threading.Thread(
        target=_interrupt_until_finished,
        args=(worker, lock, finished),
        name="riverrun-timeout-interrupter",
        daemon=True,
    ).start()
    return Outcome(error=TimeoutError(), timed_out=True)


def _interrupt_until_finished(
    worker: threading.Thread, lock: threading.Lock, finished: threading.Event
) -> None:
    """Raise ``TimeoutSignal`` in ``worker`` until its body has stopped.

    One raise is not always enough: an exception that lands in a ``__del__`` method or
    a weakref callback (the garbage collector can run either at any bytecode) is
    printed and dropped by Python, and the body would run on. So it is raised again,
    less and less often, for as long as the body has not finished.
    """
    import ctypes

    pause = 0.02
    while True:
        with lock:
            if finished.is_set() or worker.ident is None or not worker.is_alive():
                return
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(worker.ident), ctypes.py_object(TimeoutSignal)
            )
        if finished.wait(pause):
            return
        pause = min(pause * 2, 1.0)


def _hook_sync(hook: Hook) -> Outcome:
    try:
        result = hook.fn(*hook.args)
        if isinstance(result, Awaitable):
            result = run_coroutine_sync(_await(result))
        return Outcome(value=result)
    except Exception as error:
        return Outcome(error=error)


async def _hook_async(hook: Hook) -> Outcome:
    try:
        result = hook.fn(*hook.args)
        if isinstance(result, Awaitable):
            result = await result
        return Outcome(value=result)
    except Exception as error:
        return Outcome(error=error)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def loop_is_running() -> bool:
    """Whether an asyncio event loop is running on this thread (without importing asyncio)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_thread_loops = threading.local()


def _loop_of_this_thread() -> asyncio.AbstractEventLoop:
    """This thread's own event loop for sync code calling async tasks, made once.

    ``asyncio.run`` builds and tears down a loop per call (about 0.2 ms); this one is
    kept and closed when its thread goes away (at exit for the main thread).
    """
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_loops, "loop", None)
    if loop is None or loop.is_closed():
        import asyncio
        import weakref

        loop = asyncio.new_event_loop()
        _thread_loops.loop = loop
        weakref.finalize(threading.current_thread(), loop.close)
    return loop


def run_coroutine_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code and return its result.

    On a thread with no running loop it runs on that thread's own loop (kept between
    calls, so loop-bound clients an async task keeps can be reused by the next call).
    On a thread whose loop is busy running the caller (sync code called from async
    code), a helper thread runs it, with the caller's context variables.
    """
    if not loop_is_running():
        return _loop_of_this_thread().run_until_complete(coroutine)
    context = contextvars.copy_context()
    box: list[Outcome] = []

    def in_helper() -> T:
        return run_coroutine_sync(coroutine)

    def target() -> None:
        try:
            box.append(Outcome(value=context.run(in_helper)))
        except BaseException as error:
            box.append(Outcome(error=error))

    helper = threading.Thread(target=target, name="riverrun-async-bridge", daemon=True)
    helper.start()
    helper.join()
    if box[0].error is not None:
        raise box[0].error
    return box[0].value  # type: ignore[no-any-return]
