"""Futures for submitted tasks, and ``wait`` / ``as_completed`` over them.

Example:
    >>> futures = [process_item.submit(i) for i in items]
    >>> wait(futures)
    >>> [f.result() for f in futures]
"""

from __future__ import annotations

import concurrent.futures
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from riverrun.states import Pending, State

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "DoneAndNotDoneFutures",
    "RiverrunFuture",
    "RiverrunFutureList",
    "as_completed",
    "wait",
]

R = TypeVar("R")


class RiverrunFuture(Generic[R]):
    """The eventual final state of a submitted task run.

    Attributes:
        task_run_id: the id of the task run, known at once.
        name: the task's name.
    """

    __slots__ = ("_future", "_loop", "name", "observed", "task_run_id")

    def __init__(
        self,
        future: concurrent.futures.Future[State],
        *,
        task_run_id: str,
        name: str,
        loop: asyncio.AbstractEventLoop | None = None,
    ):
        self._future = future
        self.task_run_id = task_run_id
        self.name = name
        # The event loop an async task runs on, when it was submitted from async code:
        # blocking that loop's thread to wait for it would wait forever.
        self._loop = loop
        # Set once a caller has looked at the outcome, so the flow knows whether a
        # failure was handled or must fail the flow.
        self.observed = False

    def __repr__(self) -> str:
        return f"RiverrunFuture(name={self.name!r}, task_run_id={self.task_run_id!r})"

    @property
    def state(self) -> State:
        """The task run's state now (``Pending`` until it finishes)."""
        if not self._future.done():
            return Pending()
        self.observed = True
        return self._final_state(None)

    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run finishes or ``timeout`` seconds pass."""
        self._check_not_blocking_own_loop("wait()")
        concurrent.futures.wait([self._future], timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value; raises its exception if it failed.

        Raises:
            TimeoutError: the run did not finish within ``timeout`` seconds.
        """
        if self._loop is not None:
            self._check_not_blocking_own_loop("result()")
        state = self._final_state(timeout)
        self.observed = True
        return state.result(raise_on_failure=raise_on_failure)  # type: ignore[no-any-return]

    async def aresult(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """``result`` for async code: waits without blocking the event loop."""
        import asyncio

        if not self._future.done():
            # asyncio.wait, unlike wait_for, never cancels what it waits for: a timeout
            # leaves the task run going.
            done, _ = await asyncio.wait({asyncio.wrap_future(self._future)}, timeout=timeout)
            if not done:
                raise TimeoutError(
                    f"Task run {self.name!r} did not finish within {timeout} second(s)"
                )
        return self.result(raise_on_failure=raise_on_failure)

    def _check_not_blocking_own_loop(self, what: str) -> None:
        if self._loop is None or self._future.done():
            return
        asyncio = sys.modules["asyncio"]
        if asyncio._get_running_loop() is self._loop:
            raise RuntimeError(
                f"{what} on the future of async task run {self.name!r} would block the event "
                "loop that task runs on; in async code use `await future.aresult()` or "
                "`await asyncio.gather(*(f.aresult() for f in futures))`"
            )

    def _final_state(self, timeout: float | None) -> State:
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"Task run {self.name!r} did not finish within {timeout} second(s)"
            ) from None

    @property
    def concurrent_future(self) -> concurrent.futures.Future[State]:
        """The underlying ``concurrent.futures.Future`` of the final state."""
        return self._future


class RiverrunFutureList(list[RiverrunFuture[R]]):
    """The futures ``task.map`` returns, in the order of its inputs."""

    def wait(self, timeout: float | None = None) -> None:
        """Block until every task run finishes or ``timeout`` seconds pass."""
        wait(self, timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """Every task's return value, in order; raises the first failure's exception.

        Raises:
            TimeoutError: not every run finished within ``timeout`` seconds.
        """
        not_done = wait(self, timeout).not_done
        if not_done:
            raise TimeoutError(
                f"{len(not_done)} of {len(self)} task runs did not finish within "
                f"{timeout} second(s)"
            )
        return [future.result(raise_on_failure=raise_on_failure) for future in self]


class DoneAndNotDoneFutures(NamedTuple):
    done: set[RiverrunFuture[Any]]
    not_done: set[RiverrunFuture[Any]]


def wait(
    futures: Iterable[RiverrunFuture[Any]], timeout: float | None = None
) -> DoneAndNotDoneFutures:
    """Wait until every future is done or ``timeout`` passes; return both sets."""
    by_inner = {future.concurrent_future: future for future in futures}
    for future in by_inner.values():
        future._check_not_blocking_own_loop("wait()")
    done, not_done = concurrent.futures.wait(by_inner, timeout=timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[RiverrunFuture[R]], timeout: float | None = None
) -> Iterator[RiverrunFuture[R]]:
    """Yield the futures as their task runs finish, first finished first."""
    by_inner = {future.concurrent_future: future for future in futures}
    for future in by_inner.values():
        future._check_not_blocking_own_loop("as_completed()")
    for inner in concurrent.futures.as_completed(by_inner, timeout=timeout):
        yield by_inner[inner]
