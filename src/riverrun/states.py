"""Run states: what a flow or task run is doing, or how it ended.

A ``State`` has a ``type`` (one of ``StateType``, which the orchestration rules reason
about) and a ``name`` (what users see: ``Retrying`` is a ``RUNNING`` state,
``Cached`` a ``COMPLETED`` one, ``TimedOut`` a ``FAILED`` one).

Example:
    >>> state = my_task(1, return_state=True)
    >>> state.is_completed(), state.result()
    (True, 2)
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from riverrun.exceptions import UnfinishedRun

__all__ = [
    "AwaitingRetry",
    "Cached",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "Late",
    "NotReady",
    "Paused",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "TimedOut",
]


class StateType(enum.StrEnum):
    """The kinds of state the orchestration rules distinguish."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    PAUSED = "PAUSED"


# The members as module names, for the methods and factories below: in Python 3.11 an
# attribute read on an Enum class (``StateType.RUNNING``) goes through the metaclass's
# ``__getattr__`` hook, about 60 ns against 5 for a global, and the engine makes about
# ten such reads per task run.
_SCHEDULED = StateType.SCHEDULED
_PENDING = StateType.PENDING
_RUNNING = StateType.RUNNING
_COMPLETED = StateType.COMPLETED
_FAILED = StateType.FAILED
_CRASHED = StateType.CRASHED
_CANCELLING = StateType.CANCELLING
_CANCELLED = StateType.CANCELLED
_PAUSED = StateType.PAUSED

FINAL_TYPES = frozenset({_COMPLETED, _FAILED, _CRASHED, _CANCELLED})

#: Each type's value, read without the enum's per-access descriptor (on the hot path).
TYPE_VALUES: dict[StateType, str] = {kind: kind.value for kind in StateType}
_DEFAULT_NAMES = {kind: kind.value.capitalize() for kind in StateType}

_NO_DATA: Any = object()


class State:
    """One state of a flow or task run.

    Attributes:
        type: the ``StateType``.
        name: the display name (``"Completed"``, ``"Retrying"``, ``"TimedOut"``…).
        message: a human-readable reason, or ``None``.
        timestamp: when the run entered this state (UTC).
        data: the run's return value for a completed state, the exception for a failed one.
    """

    __slots__ = ("data", "message", "name", "timestamp", "type")

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        *,
        message: str | None = None,
        data: Any = _NO_DATA,
        timestamp: datetime | None = None,
    ) -> None:
        self.type = type
        self.name = name or _DEFAULT_NAMES[type]
        self.message = message
        self.data = data
        self.timestamp = timestamp or datetime.now(UTC)

    def __repr__(self) -> str:
        return f"{self.name}({self.message!r})" if self.message else f"{self.name}()"

    def result(self, raise_on_failure: bool = True) -> Any:
        """Return the run's value, or raise the exception that failed it.

        Args:
            raise_on_failure: when false, a failed state returns its exception instead.

        Raises:
            UnfinishedRun: the state is not final, so there is no result yet.
        """
        if self.type is _COMPLETED:
            return None if self.data is _NO_DATA else self.data
        if self.type in FINAL_TYPES:
            error = self.data if isinstance(self.data, BaseException) else None
            if error is None:
                error = _state_error(self)
            if raise_on_failure:
                raise error
            return error
        raise UnfinishedRun(f"{self!r} is not final; it has no result yet")

    def is_scheduled(self) -> bool:
        return self.type is _SCHEDULED

    def is_pending(self) -> bool:
        return self.type is _PENDING

    def is_running(self) -> bool:
        return self.type is _RUNNING

    def is_completed(self) -> bool:
        return self.type is _COMPLETED

    def is_failed(self) -> bool:
        return self.type is _FAILED

    def is_crashed(self) -> bool:
        return self.type is _CRASHED

    def is_cancelling(self) -> bool:
        return self.type is _CANCELLING

    def is_cancelled(self) -> bool:
        return self.type is _CANCELLED

    def is_paused(self) -> bool:
        return self.type is _PAUSED

    def is_final(self) -> bool:
        return self.type in FINAL_TYPES

    def has_data(self) -> bool:
        return self.data is not _NO_DATA


def _state_error(state: State) -> BaseException:
    # A final non-completed state read back from the store has no exception object;
    # rebuild a meaningful one from what was recorded.
    from riverrun.exceptions import RiverrunError

    return RiverrunError(f"Run finished in state {state!r}")


_new_object = object.__new__


def _state(type: StateType, name: str, message: str | None, data: Any = _NO_DATA) -> State:
    # What State(...) gives, without its argument handling: the engine makes three
    # states per task run, and this halves their cost.
    state = _new_object(State)
    state.type = type
    state.name = name
    state.message = message
    state.data = data
    state.timestamp = datetime.now(UTC)
    return state


def Scheduled(message: str | None = None, *, scheduled_time: datetime | None = None) -> State:
    return State(_SCHEDULED, message=message, timestamp=scheduled_time)


def Late(message: str | None = None) -> State:
    return _state(_SCHEDULED, "Late", message)


def AwaitingRetry(message: str | None = None) -> State:
    return _state(_SCHEDULED, "AwaitingRetry", message)


def Pending(message: str | None = None) -> State:
    return _state(_PENDING, "Pending", message)


def Running(message: str | None = None) -> State:
    return _state(_RUNNING, "Running", message)


def Retrying(message: str | None = None) -> State:
    return _state(_RUNNING, "Retrying", message)


def Completed(message: str | None = None, *, data: Any = None) -> State:
    return _state(_COMPLETED, "Completed", message, data)


def Cached(message: str | None = None, *, data: Any = None) -> State:
    return _state(_COMPLETED, "Cached", message, data)


def Failed(message: str | None = None, *, data: Any = _NO_DATA) -> State:
    return _state(_FAILED, "Failed", message, data)


def NotReady(message: str | None = None, *, data: Any = _NO_DATA) -> State:
    """A task that never ran because an upstream task did not complete."""
    return _state(_FAILED, "NotReady", message, data)


def TimedOut(message: str | None = None, *, data: Any = _NO_DATA) -> State:
    return _state(_FAILED, "TimedOut", message, data)


def Crashed(message: str | None = None, *, data: Any = _NO_DATA) -> State:
    return _state(_CRASHED, "Crashed", message, data)


def Cancelling(message: str | None = None) -> State:
    return _state(_CANCELLING, "Cancelling", message)


def Cancelled(message: str | None = None, *, data: Any = _NO_DATA) -> State:
    return _state(_CANCELLED, "Cancelled", message, data)


def Paused(message: str | None = None) -> State:
    return _state(_PAUSED, "Paused", message)
