"""Futures inside a task's arguments: finding them, and putting their results in.

A future passed to a task, alone or inside a list, tuple, set, dict or dataclass, makes
the task wait for it and receive its result. ``allow_failure(...)`` lets the task run
even if the future did not complete (it then receives the exception); ``unmapped(...)``
only matters to ``map`` and is unwrapped here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from riverrun.annotations import allow_failure, unmapped
from riverrun.exceptions import UpstreamTaskError
from riverrun.futures import RiverrunFuture, RiverrunFutureList
from riverrun.states import Cancelled, Crashed, NotReady, State

__all__ = ["Upstreams", "final_state", "find_upstreams", "resolve"]

_ATOMIC = frozenset({int, float, str, bytes, bool, type(None), complex, bytearray})
_SEQUENCES = (list, tuple, set, frozenset, RiverrunFutureList)
# Deeper structures are passed as they are (and a self-containing list ends here).
_MAX_DEPTH = 32


@dataclasses.dataclass(slots=True)
class Upstreams:
    """The futures a call depends on, by task run id, in the order they were found.

    Attributes:
        futures: every future found in the arguments or in ``wait_for``.
        required: ids of those that must complete for the task to run.
    """

    futures: dict[str, RiverrunFuture[Any]]
    required: set[str]

    @property
    def ids(self) -> list[str]:
        return list(self.futures)


def find_upstreams(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None = None,
) -> Upstreams | None:
    """The futures in ``args``, ``kwargs`` and ``wait_for``; ``None`` when there is
    nothing to wait for or unwrap (the common case, checked cheaply)."""
    if wait_for is None:
        # Plain values (numbers, strings) hold no futures: most calls stop here.
        for value in args:
            if type(value) not in _ATOMIC:
                break
        else:
            for value in kwargs.values():
                if type(value) not in _ATOMIC:
                    break
            else:
                return None
    found = Upstreams({}, set())
    special = False
    for value in args:
        if type(value) not in _ATOMIC and _collect(value, found, False, 0):
            special = True
    for value in kwargs.values():
        if type(value) not in _ATOMIC and _collect(value, found, False, 0):
            special = True
    if wait_for is not None:
        if isinstance(wait_for, RiverrunFuture | allow_failure):
            wait_for = [wait_for]
        for value in wait_for:
            if not isinstance(value, RiverrunFuture | allow_failure):
                raise TypeError(f"wait_for takes futures (or allow_failure(future)), got {value!r}")
            _collect(value, found, False, 0)
            special = True
    return found if special else None


def _collect(value: Any, found: Upstreams, allowed: bool, depth: int) -> bool:
    """Record the futures inside ``value``; true if it holds anything to substitute."""
    kind = type(value)
    if kind in _ATOMIC or depth > _MAX_DEPTH:
        return False
    if kind is RiverrunFuture:
        key = value.task_run_id
        found.futures[key] = value
        if not allowed:
            found.required.add(key)
        return True
    if kind is allow_failure:
        _collect(value.value, found, True, depth + 1)
        return True
    if kind is unmapped:
        _collect(value.value, found, allowed, depth + 1)
        return True
    special = False
    if kind is dict:
        for key, item in value.items():
            if _collect(key, found, allowed, depth + 1):
                special = True
            if _collect(item, found, allowed, depth + 1):
                special = True
    elif kind in _SEQUENCES or _is_namedtuple(value):
        for item in value:
            if type(item) not in _ATOMIC and _collect(item, found, allowed, depth + 1):
                special = True
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            # Only fields the constructor takes can be given their results.
            if field.init and _collect(getattr(value, field.name), found, allowed, depth + 1):
                special = True
    return special


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def resolve(
    args: tuple[Any, ...], kwargs: dict[str, Any], upstreams: Upstreams
) -> tuple[tuple[Any, ...], dict[str, Any]] | State:
    """The arguments with each future replaced by its result, once every upstream
    future is done; a ``NotReady`` state if a required one did not complete."""
    values: dict[str, Any] = {}
    for key, future in upstreams.futures.items():
        state = final_state(future)
        if key in upstreams.required and not state.is_completed():
            error = UpstreamTaskError(future.name, key, state.name)
            return NotReady(str(error), data=error)
        values[key] = state.result(raise_on_failure=False)
    new_args = tuple(_substitute(value, values, 0) for value in args)
    new_kwargs = {name: _substitute(value, values, 0) for name, value in kwargs.items()}
    return new_args, new_kwargs


def final_state(future: RiverrunFuture[Any]) -> State:
    """The final state of a done future, also when it ended without one (its run was
    cancelled before it started, or the engine failed to start it)."""
    inner = future.concurrent_future
    if inner.cancelled():
        return Cancelled("The task run was cancelled before it started")
    error = inner.exception()
    if error is not None:
        return Crashed(f"The task run could not run: {error}", data=error)
    return inner.result()


def _substitute(value: Any, values: dict[str, Any], depth: int) -> Any:
    kind = type(value)
    if kind in _ATOMIC or depth > _MAX_DEPTH:
        return value
    if kind is RiverrunFuture:
        return values[value.task_run_id]
    if kind is allow_failure or kind is unmapped:
        return _substitute(value.value, values, depth + 1)
    if kind is dict:
        return {
            _substitute(key, values, depth + 1): _substitute(item, values, depth + 1)
            for key, item in value.items()
        }
    if kind is RiverrunFutureList:
        return [_substitute(item, values, depth + 1) for item in value]
    if kind in _SEQUENCES:
        return kind(_substitute(item, values, depth + 1) for item in value)
    if _is_namedtuple(value):
        return kind(*(_substitute(item, values, depth + 1) for item in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            field.name: _substitute(getattr(value, field.name), values, depth + 1)
            for field in dataclasses.fields(value)
            if field.init
        }
        return dataclasses.replace(value, **changes)
    return value
