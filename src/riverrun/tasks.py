"""``@task``: a function whose calls inside a flow become recorded, retried task runs."""

from __future__ import annotations

import datetime
import inspect
import os
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, ParamSpec, TypeVar, overload

from riverrun.names import callable_key
from riverrun.orchestration import RetryDelaySeconds, RetryPolicy, normalise_delays

if TYPE_CHECKING:
    from riverrun.cache_policies import CachePolicy
    from riverrun.context import TaskRunContext
    from riverrun.engine.parameters import Binder
    from riverrun.futures import RiverrunFuture, RiverrunFutureList
    from riverrun.serializers import Serializer
    from riverrun.states import State
    from riverrun.store.protocol import TaskRun

__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

TaskHook = Callable[["Task[..., Any]", "TaskRun", "State"], Any]
RetryCondition = Callable[["Task[..., Any]", "TaskRun", "State"], bool]
CacheKeyFn = Callable[["TaskRunContext", dict[str, Any]], str | None]


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Retry delays that double each time: ``backoff_factor * 2 ** n`` for retry ``n``.

    Example:
        >>> @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10))
        ... def call_api(): ...  # waits 10, 20 then 40 seconds
    """
    if backoff_factor < 0:
        raise ValueError(f"backoff_factor must be >= 0, got {backoff_factor}")

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**attempt for attempt in range(retries)]

    return delays


def task_input_hash(context: TaskRunContext, arguments: dict[str, Any]) -> str | None:
    """A cache key from the task's code and its inputs (for ``cache_key_fn``).

    The same as ``cache_policy=TASK_SOURCE + INPUTS``: inputs are hashed in a canonical
    form (``riverrun.hashing``), so the key is the same in every process and Python
    session; editing the task's source invalidates its cached results.

    Raises:
        UnhashableInputError: an input has no stable digest (the engine logs a warning
            naming it and does not cache the run).
    """
    import riverrun.hashing as hashing  # (this form of import is the cheapest per call)

    digest = context.task.source_digest()
    digest.update(hashing.digest_arguments(arguments).encode())
    return str(digest.hexdigest())


def _check_expiration(value: datetime.timedelta | None) -> datetime.timedelta | None:
    if value is not None and not isinstance(value, datetime.timedelta):
        raise TypeError(f"cache_expiration must be a datetime.timedelta, got {value!r}")
    return value


def _effective_policy(
    name: str, policy: CachePolicy | None, key_fn: CacheKeyFn | None
) -> CachePolicy | None:
    if policy is None and key_fn is None:
        return None
    from riverrun.cache_policies import CacheKeyFnPolicy, CachePolicy, NoCache

    if policy is not None and key_fn is not None:
        raise ValueError(f"Task {name!r}: give cache_policy or cache_key_fn, not both")
    if key_fn is not None:
        if not callable(key_fn):
            raise TypeError(f"cache_key_fn must be callable, got {key_fn!r}")
        return CacheKeyFnPolicy(key_fn)
    if not isinstance(policy, CachePolicy):
        raise TypeError(
            f"cache_policy must be a policy from riverrun.cache_policies, got {policy!r}"
        )
    return None if isinstance(policy, NoCache) else policy


def _storage_folder(value: str | os.PathLike[str] | None) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise TypeError(f"result_storage must be a folder path, got {value!r}")
    return Path(value).expanduser().absolute()


def _serializer(value: str | Serializer | None) -> Serializer | None:
    if value is None:
        return None
    from riverrun.serializers import get_serializer

    return get_serializer(value)


class Task(Generic[P, R]):
    """A task: call it inside a flow to run it as a recorded, retried task run.

    Attributes:
        fn: the decorated function.
        name: the display name (defaults to the function's name).
        key: a stable identity (module and qualified name) used for caching and reuse.
        is_async: whether ``fn`` is a coroutine function.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        retries: int = 0,
        retry_delay_seconds: RetryDelaySeconds = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: RetryCondition | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        cache_key_fn: CacheKeyFn | None = None,
        cache_expiration: datetime.timedelta | None = None,
        refresh_cache: bool = False,
        cache_policy: CachePolicy | None = None,
        persist_result: bool | None = None,
        result_storage: str | os.PathLike[str] | None = None,
        result_serializer: str | Serializer | None = None,
        result_storage_key: str | None = None,
        on_completion: Sequence[TaskHook] | None = None,
        on_failure: Sequence[TaskHook] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {fn!r}")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        self.description = description if description is not None else inspect.getdoc(fn)
        self.key = callable_key(fn, self.name)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        # Built on first call (engine code is not imported with riverrun).
        self.binder: Binder | None = None
        self._fingerprint: str | None = None
        self._digest: Any = None
        self._identity: str | None = None
        self.tags = tuple(dict.fromkeys(tags or ()))
        self.policy = RetryPolicy(
            retries=retries,
            delays=normalise_delays(retry_delay_seconds, retries),
            jitter_factor=retry_jitter_factor,
            timeout_seconds=timeout_seconds,
        )
        self.retry_condition_fn = retry_condition_fn
        self.log_prints = log_prints
        self.task_run_name = task_run_name
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = _check_expiration(cache_expiration)
        self.refresh_cache = refresh_cache
        # None: not cached (the hot path checks only this).
        self.cache_policy = _effective_policy(self.name, cache_policy, cache_key_fn)
        if persist_result is False and self.cache_policy is not None:
            raise ValueError(
                f"Task {self.name!r}: caching keeps results on disk, so it cannot be "
                "combined with persist_result=False"
            )
        self.persist_result = persist_result
        self.result_storage = _storage_folder(result_storage)
        self.result_serializer = _serializer(result_serializer)
        if result_storage_key is not None:
            from riverrun.engine.results import check_key

            check_key(result_storage_key)  # refuses absolute and '..' templates now
        self.result_storage_key = result_storage_key
        self.on_completion_hooks = list(on_completion or ())
        self.on_failure_hooks = list(on_failure or ())
        # Keep every constructor argument so with_options can copy faithfully.
        self._options: dict[str, Any] = {
            "name": name,
            "description": description,
            "tags": tags,
            "retries": retries,
            "retry_delay_seconds": retry_delay_seconds,
            "retry_jitter_factor": retry_jitter_factor,
            "retry_condition_fn": retry_condition_fn,
            "timeout_seconds": timeout_seconds,
            "log_prints": log_prints,
            "task_run_name": task_run_name,
            "cache_key_fn": cache_key_fn,
            "cache_expiration": cache_expiration,
            "refresh_cache": refresh_cache,
            "cache_policy": cache_policy,
            "persist_result": persist_result,
            "result_storage": result_storage,
            "result_serializer": result_serializer,
            "result_storage_key": result_storage_key,
            "on_completion": on_completion,
            "on_failure": on_failure,
        }
        self.__doc__ = fn.__doc__
        self.__name__ = self.name
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed (same names as ``@task``)."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"Unknown task option(s): {', '.join(sorted(unknown))}")
        merged = {
            **self._options,
            # Hooks added later with @task.on_completion / @task.on_failure come along.
            "on_completion": self.on_completion_hooks,
            "on_failure": self.on_failure_hooks,
            **options,
        }
        # One way of caching at a time: the one given here replaces the task's other.
        if "cache_policy" in options and "cache_key_fn" not in options:
            merged["cache_key_fn"] = None
        elif "cache_key_fn" in options and "cache_policy" not in options:
            merged["cache_policy"] = None
        return Task(self.fn, **merged)

    def source_fingerprint(self) -> str:
        """The task's identity and source code (computed once), for cache keys."""
        if self._fingerprint is None:
            try:
                source = inspect.getsource(self.fn)
            except (OSError, TypeError):
                code = getattr(self.fn, "__code__", None)
                source = repr(code.co_code) if code is not None else ""
            self._fingerprint = f"{self.key}\n{source}"
        return self._fingerprint

    def identity(self) -> str:
        """A digest of the task's key, name and source (computed once): a resumed run
        reuses a result only for the task that produced it (tasks made by one factory
        share a key but not a name)."""
        if self._identity is None:
            digest = self.source_digest()
            digest.update(b"\x00" + self.name.encode("utf-8", "surrogatepass"))
            self._identity = str(digest.hexdigest())
        return self._identity

    def source_digest(self) -> Any:
        """A SHA-256 hasher fed with ``source_fingerprint()``, copied for each use."""
        if self._digest is None:
            import hashlib

            self._digest = hashlib.sha256(self.source_fingerprint().encode())
        return self._digest.copy()

    def on_completion(self, hook: TaskHook) -> TaskHook:
        """Register ``hook`` for completed runs (usable as a decorator)."""
        self.on_completion_hooks.append(hook)
        return hook

    def on_failure(self, hook: TaskHook) -> TaskHook:
        """Register ``hook`` for failed runs (usable as a decorator)."""
        self.on_failure_hooks.append(hook)
        return hook

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __call__(  # type: ignore[valid-type]
        self, *args: P.args, return_state: Literal[True], **kwargs: P.kwargs
    ) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task now and return its result (or its final state)."""
        engine = _engine or _load_engine()
        if not kwargs:
            return engine.call_task(self, args, kwargs, return_state=False, wait_for=None)
        return_state = kwargs.pop("return_state", False)
        wait_for = self._pop_wait_for(kwargs)
        return engine.call_task(self, args, kwargs, return_state=return_state, wait_for=wait_for)

    # An async task's future gives what its coroutine returns, not the coroutine.
    @overload
    def submit(
        self: Task[P, Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
    ) -> RiverrunFuture[T]: ...

    @overload
    def submit(self: Task[P, T], *args: Any, **kwargs: Any) -> RiverrunFuture[T]: ...

    def submit(self, *args: Any, **kwargs: Any) -> RiverrunFuture[Any]:
        """Start the task in the flow's task runner and return a future at once.

        Futures among the arguments (also inside lists, dicts, tuples and dataclasses)
        make the run wait for them and receive their results; ``wait_for=[future, ...]``
        adds dependencies without passing data. (Arguments are typed ``Any`` because a
        future may stand in for any parameter.)
        """
        engine = _engine or _load_engine()
        wait_for = self._pop_wait_for(kwargs) if kwargs else None
        return engine.submit_task(self, args, kwargs, wait_for)

    @overload
    def map(
        self: Task[P, Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
    ) -> RiverrunFutureList[T]: ...

    @overload
    def map(self: Task[P, T], *args: Any, **kwargs: Any) -> RiverrunFutureList[T]: ...

    def map(self, *args: Any, **kwargs: Any) -> RiverrunFutureList[Any]:
        """Submit one run per item of the iterable arguments, zipped together.

        Wrap an argument in ``unmapped(...)`` to pass it whole to every run.

        Example:
            >>> add.map([1, 2, 3], unmapped(10)).result()
            [11, 12, 13]
        """
        engine = _engine or _load_engine()
        return engine.map_task(self, args, kwargs, self._pop_wait_for(kwargs))

    def _pop_wait_for(self, kwargs: dict[str, Any]) -> Any:
        # A task with its own parameter named wait_for keeps it.
        if "wait_for" in kwargs and "wait_for" not in self.signature.parameters:
            return kwargs.pop("wait_for")
        return None


class _Engine(NamedTuple):
    call_task: Callable[..., Any]
    submit_task: Callable[..., RiverrunFuture[Any]]
    map_task: Callable[..., RiverrunFutureList[Any]]


# The engine's entry points, imported on the first call (not with riverrun) and kept:
# an import statement in ``__call__`` costs about a microsecond per task call.
_engine: _Engine | None = None


def _load_engine() -> _Engine:
    global _engine
    from riverrun.engine.submission import map_task, submit_task
    from riverrun.engine.task_engine import call_task

    _engine = _Engine(call_task, submit_task, map_task)
    return _engine


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    retries: int = 0,
    retry_delay_seconds: RetryDelaySeconds = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: RetryCondition | None = None,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    task_run_name: str | Callable[[], str] | None = None,
    cache_key_fn: CacheKeyFn | None = None,
    cache_expiration: datetime.timedelta | None = None,
    refresh_cache: bool = False,
    cache_policy: CachePolicy | None = None,
    persist_result: bool | None = None,
    result_storage: str | os.PathLike[str] | None = None,
    result_serializer: str | Serializer | None = None,
    result_storage_key: str | None = None,
    on_completion: Sequence[TaskHook] | None = None,
    on_failure: Sequence[TaskHook] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a task, bare (``@task``) or with options (``@task(retries=2)``).

    Example:
        >>> @task(retries=2, retry_delay_seconds=1, log_prints=True)
        ... def fetch_data(url: str) -> list[dict]:
        ...     ...
    """
    if fn is not None:
        return Task(fn, **options)

    def decorate(function: Callable[..., Any]) -> Task[..., Any]:
        return Task(function, **options)

    return decorate
