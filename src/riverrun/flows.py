"""``@flow``: a function whose calls become recorded flow runs."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

from riverrun.names import callable_key
from riverrun.orchestration import RetryDelaySeconds, RetryPolicy, normalise_delays
from riverrun.task_runners import TaskRunner, ThreadPoolTaskRunner
from riverrun.tasks import _serializer, _storage_folder

if TYPE_CHECKING:
    from riverrun.serializers import Serializer
    from riverrun.states import State
    from riverrun.store.protocol import FlowRun

__all__ = ["Flow", "flow", "resume_flow_run"]

P = ParamSpec("P")
R = TypeVar("R")

FlowHook = Callable[["Flow[..., Any]", "FlowRun", "State"], Any]
FlowRetryCondition = Callable[["Flow[..., Any]", "FlowRun", "State"], bool]


class Flow(Generic[P, R]):
    """A flow: each call is a recorded flow run with its own name, state and logs.

    Attributes:
        fn: the decorated function.
        name: the display name (defaults to the function's name with ``_`` → ``-``).
        key: a stable identity (module and qualified name).
        is_async: whether ``fn`` is a coroutine function.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        tags: Iterable[str] | None = None,
        retries: int = 0,
        retry_delay_seconds: RetryDelaySeconds = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: FlowRetryCondition | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        validate_parameters: bool = True,
        task_runner: TaskRunner | None = None,
        persist_result: bool | None = None,
        result_storage: str | os.PathLike[str] | None = None,
        result_serializer: str | Serializer | None = None,
        on_completion: Sequence[FlowHook] | None = None,
        on_failure: Sequence[FlowHook] | None = None,
        on_crashed: Sequence[FlowHook] | None = None,
        on_cancellation: Sequence[FlowHook] | None = None,
        on_running: Sequence[FlowHook] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@flow needs a function, got {fn!r}")
        self.fn = fn
        function_name = getattr(fn, "__name__", type(fn).__name__)
        self.name = name or function_name.replace("_", "-")
        self.description = description if description is not None else inspect.getdoc(fn)
        self.version = version
        self.key = callable_key(fn, function_name)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        self.tags = tuple(dict.fromkeys(tags or ()))
        self.policy = RetryPolicy(
            retries=retries,
            delays=normalise_delays(retry_delay_seconds, retries),
            jitter_factor=retry_jitter_factor,
            timeout_seconds=timeout_seconds,
        )
        self.retry_condition_fn = retry_condition_fn
        self.log_prints = log_prints
        self.flow_run_name = flow_run_name
        self.validate_parameters = validate_parameters
        self.task_runner: TaskRunner = task_runner or ThreadPoolTaskRunner()
        # Defaults for the flow's tasks (a task's own options win).
        self.persist_result = persist_result
        self.result_storage = _storage_folder(result_storage)
        self.result_serializer = _serializer(result_serializer)
        self.on_completion_hooks = list(on_completion or ())
        self.on_failure_hooks = list(on_failure or ())
        self.on_crashed_hooks = list(on_crashed or ())
        self.on_cancellation_hooks = list(on_cancellation or ())
        self.on_running_hooks = list(on_running or ())
        # Validators built from the type hints on first call (pydantic is imported then).
        self.validation_cache: dict[str, Any] = {}
        self._options: dict[str, Any] = {
            "name": name,
            "description": description,
            "version": version,
            "tags": tags,
            "retries": retries,
            "retry_delay_seconds": retry_delay_seconds,
            "retry_jitter_factor": retry_jitter_factor,
            "retry_condition_fn": retry_condition_fn,
            "timeout_seconds": timeout_seconds,
            "log_prints": log_prints,
            "flow_run_name": flow_run_name,
            "validate_parameters": validate_parameters,
            "task_runner": task_runner,
            "persist_result": persist_result,
            "result_storage": result_storage,
            "result_serializer": result_serializer,
            "on_completion": on_completion,
            "on_failure": on_failure,
            "on_crashed": on_crashed,
            "on_cancellation": on_cancellation,
            "on_running": on_running,
        }
        self.__doc__ = fn.__doc__
        self.__name__ = function_name
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed (same names as ``@flow``)."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"Unknown flow option(s): {', '.join(sorted(unknown))}")
        merged = {
            **self._options,
            "on_completion": self.on_completion_hooks,
            "on_failure": self.on_failure_hooks,
            "on_crashed": self.on_crashed_hooks,
            "on_cancellation": self.on_cancellation_hooks,
            "on_running": self.on_running_hooks,
            **options,
        }
        return Flow(self.fn, **merged)

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __call__(  # type: ignore[valid-type]
        self, *args: P.args, return_state: Literal[True], **kwargs: P.kwargs
    ) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the flow and return its result (or its final state)."""
        call_flow = _call_flow or _load_engine()
        return_state = kwargs.pop("return_state", False) if kwargs else False
        return call_flow(self, args, kwargs, return_state=return_state)


# The engine's entry point, imported on the first call (not with riverrun) and kept.
_call_flow: Callable[..., Any] | None = None


def _load_engine() -> Callable[..., Any]:
    global _call_flow
    from riverrun.engine.flow_engine import call_flow

    _call_flow = call_flow
    return call_flow


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    tags: Iterable[str] | None = None,
    retries: int = 0,
    retry_delay_seconds: RetryDelaySeconds = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: FlowRetryCondition | None = None,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    validate_parameters: bool = True,
    task_runner: TaskRunner | None = None,
    persist_result: bool | None = None,
    result_storage: str | os.PathLike[str] | None = None,
    result_serializer: str | Serializer | None = None,
    on_completion: Sequence[FlowHook] | None = None,
    on_failure: Sequence[FlowHook] | None = None,
    on_crashed: Sequence[FlowHook] | None = None,
    on_cancellation: Sequence[FlowHook] | None = None,
    on_running: Sequence[FlowHook] | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a flow, bare (``@flow``) or with options (``@flow(retries=1)``).

    Example:
        >>> @flow(name="example-pipeline", log_prints=True)
        ... def pipeline(url: str) -> list:
        ...     return process_data(fetch_data(url))
    """
    if fn is not None:
        return Flow(fn, **options)

    def decorate(function: Callable[..., Any]) -> Flow[..., Any]:
        return Flow(function, **options)

    return decorate


def resume_flow_run(
    flow_run_id: str,
    flow: Flow[..., Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> State:
    """Run a Failed, Crashed or Cancelled flow run again, from where it failed.

    The run gets a new attempt (same id, same parameters). Each task call whose run
    completed in an earlier attempt with a persisted result, for the same inputs, is
    recorded Cached with that result instead of running; the others run. The flow is
    ``flow`` or loaded from where the run was started (its script or module). Returns
    the run's final state. ``riverrun flow-run retry ID`` does the same.

    The run is called with the parameters it was first called with: their stored JSON
    form when that is exact, else a pickle kept when the run started (in the flow's
    ``result_storage``); ``parameters=`` replaces them.

    Raises:
        ObjectNotFoundError: no flow run with that id (or unique id prefix).
        ResumeError: the run did not fail, is a subflow run, another process is
            resuming it, or its flow cannot be loaded.
    """
    from riverrun.engine.flow_engine import resume_flow_run as resume

    return resume(flow_run_id, flow, parameters)
