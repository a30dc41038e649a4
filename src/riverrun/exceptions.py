"""The exceptions riverrun raises.

::

    RiverrunError                 root of every error riverrun raises on purpose
    ├── ParameterTypeError        a flow parameter failed validation (before the body ran)
    ├── MissingContextError       a run-only API (get_run_logger) was used outside a run
    ├── UnfinishedRun             a state's result was asked for before it finished
    ├── ObjectNotFoundError       the store has no run with that id
    ├── StoreUnavailableError     the run history's database cannot be opened
    ├── InvalidResultStorageKeyError  a result key would leave its storage folder (a ValueError)
    ├── ResumeError               a flow run cannot be resumed (not failed, flow not found)
    ├── ConcurrencyLimitNotFoundError  no concurrency limit has that name (also a LookupError)
    ├── ConcurrencyLimitExistsError    a concurrency limit with that name exists already
    ├── AcquireConcurrencySlotTimeoutError  slots not granted within ``timeout_seconds``
    └── RunTimeoutError           a flow or task ran past ``timeout_seconds`` (also a TimeoutError)

    BaseException
    └── EngineSignal              control flow of the engine; derives from BaseException so a
        └── TimeoutSignal         user's ``except Exception`` cannot swallow it
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencyLimitExistsError",
    "ConcurrencyLimitNotFoundError",
    "EngineSignal",
    "InvalidResultStorageKeyError",
    "MissingContextError",
    "ObjectNotFoundError",
    "ParameterTypeError",
    "ResumeError",
    "RiverrunError",
    "RunTimeoutError",
    "StoreUnavailableError",
    "TaskRunnerError",
    "TimeoutSignal",
    "UnfinishedRun",
    "UpstreamTaskError",
]


class RiverrunError(Exception):
    """Root of every error riverrun raises on purpose."""


class ParameterTypeError(RiverrunError, TypeError):
    """A flow's parameters did not validate against its type hints.

    Attributes:
        flow_name: the flow whose parameters were rejected.
        errors: ``(parameter, value, reason)`` for each rejected parameter.
    """

    def __init__(self, flow_name: str, errors: list[tuple[str, Any, str]]) -> None:
        self.flow_name = flow_name
        self.errors = errors
        details = "; ".join(f"{name}={value!r}: {reason}" for name, value, reason in errors)
        super().__init__(f"Flow {flow_name!r} received invalid parameters: {details}")


class MissingContextError(RiverrunError, RuntimeError):
    """A function that needs a running flow or task was called outside one."""


class UnfinishedRun(RiverrunError):
    """The result of a state that is not final was requested."""


class ObjectNotFoundError(RiverrunError, LookupError):
    """The store holds no object with the requested id.

    Attributes:
        kind: ``"flow run"`` or ``"task run"``.
        object_id: the id that was asked for.
    """

    def __init__(self, kind: str, object_id: str) -> None:
        self.kind = kind
        self.object_id = object_id
        super().__init__(f"No {kind} with id {object_id!r}")


class StoreUnavailableError(RiverrunError):
    """The database of the run history cannot be opened or used.

    Attributes:
        url: the database URL, with any password hidden.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"Could not open the run history at {url}: {reason}")


class ConcurrencyLimitNotFoundError(RiverrunError, LookupError):
    """No concurrency limit has this name.

    Attributes:
        name: the name that was asked for.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"No concurrency limit named {name!r}; create it with "
            f"`riverrun concurrency-limit create {name} LIMIT` "
            "(or pass create_if_missing=True)"
        )


class ConcurrencyLimitExistsError(RiverrunError, ValueError):
    """A concurrency limit with this name exists already.

    Attributes:
        name: the name that is taken.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"A concurrency limit named {name!r} exists already; change it with "
            f"`riverrun concurrency-limit update {name} --limit N`"
        )


class AcquireConcurrencySlotTimeoutError(RiverrunError, TimeoutError):
    """Concurrency slots were not granted within ``timeout_seconds``.

    Attributes:
        names: the limits asked for.
        occupy: the slots asked of each.
        timeout_seconds: how long the caller waited.
    """

    def __init__(self, names: tuple[str, ...], occupy: int, timeout_seconds: float) -> None:
        self.names = names
        self.occupy = occupy
        self.timeout_seconds = timeout_seconds
        listed = ", ".join(repr(name) for name in names)
        super().__init__(
            f"Could not take {occupy} slot(s) of concurrency limit(s) {listed} within "
            f"{timeout_seconds:g} second(s)"
        )


class RunTimeoutError(RiverrunError, TimeoutError):
    """A flow or task ran longer than its ``timeout_seconds``.

    Attributes:
        label: the run's label (``"Task run 'x'"``).
        seconds: the limit that was exceeded.
    """

    def __init__(self, label: str, seconds: float) -> None:
        self.label = label
        self.seconds = seconds
        super().__init__(f"{label} exceeded timeout of {seconds:g} second(s)")


class UpstreamTaskError(RiverrunError):
    """A task did not run because a task it depends on did not complete.

    Attributes:
        upstream_task_run_id: the id of the first upstream task run that did not complete.
    """

    def __init__(self, upstream_name: str, upstream_task_run_id: str, state_name: str) -> None:
        self.upstream_task_run_id = upstream_task_run_id
        super().__init__(
            f"Upstream task run {upstream_name!r} ({upstream_task_run_id}) finished in state "
            f"{state_name}; this task did not run (wrap the argument in allow_failure(...) "
            "to run it anyway)"
        )


class InvalidResultStorageKeyError(RiverrunError, ValueError):
    """A result storage key that is empty, absolute, or leaves its storage folder.

    Attributes:
        key: the key (or template) that was refused.
    """

    def __init__(self, key: object, reason: str) -> None:
        self.key = key
        super().__init__(f"Invalid result storage key {key!r}: {reason}")


class ResumeError(RiverrunError):
    """A flow run cannot be resumed: it did not fail, another process is resuming it,
    or its flow cannot be loaded."""


class TaskRunnerError(RiverrunError):
    """A task runner could not run a task (its worker died, its result could not be
    sent back, its cluster went away)."""


class EngineSignal(BaseException):
    """Base of the engine's control signals (not errors a user should catch)."""


class TimeoutSignal(EngineSignal):
    """Raised inside a sync body's thread to interrupt it when its time is up."""
