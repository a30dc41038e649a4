"""What makes two task calls "the same" for caching: combinable cache policies.

A policy turns a task run into a cache key, or into no key (the run is not cached)::

    @task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(hours=1))
    def fetch(url: str) -> bytes: ...

- ``INPUTS``: the call's arguments (``INPUTS - "client"`` leaves one out).
- ``TASK_SOURCE``: the task's identity and source code; editing the task starts afresh.
- ``FLOW_PARAMETERS``: the parameters of the flow run the task runs in.
- ``RUN_ID``: the flow run's id; a result is reused inside one flow run (and when that
  run is resumed), never by another run.
- ``NONE``: no caching. It is the default: a task is cached only when it asks to be.

Policies combine with ``+``: the key covers every part, and if any part gives no key
(``NONE``, an input that cannot be hashed) the run is not cached. ``cache_key_fn=`` on
``@task`` is the same as a policy made from that function.

Keys are stable across processes and Python sessions (see ``riverrun.hashing``). An
input that cannot be hashed logs a warning and the run is not cached: never a crash,
never a wrong hit.
"""

from __future__ import annotations

import hashlib
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from riverrun.hashing import digest_arguments, scalar_key, stable_digest

if TYPE_CHECKING:
    from riverrun.context import TaskRunContext

__all__ = [
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "NoCache",
    "RunId",
    "TaskSource",
]


class CachePolicy:
    """Base of every policy: ``compute_key`` gives a key, or ``None`` for no caching.

    Raises from ``compute_key`` are reported by the engine as a warning, and the run
    is not cached.
    """

    name = "policy"

    def compute_key(
        self, context: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        raise NotImplementedError(f"{type(self).__name__} does not define compute_key")

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return CompoundCachePolicy((*_parts(self), *_parts(other)))

    def __repr__(self) -> str:
        return self.name


def _parts(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.policies if isinstance(policy, CompoundCachePolicy) else (policy,)


@dataclass(frozen=True, repr=False, eq=False)
class CompoundCachePolicy(CachePolicy):
    """Several policies at once: a key from all their keys, none if one gives none."""

    policies: tuple[CachePolicy, ...]
    # Whether every part's name is fixed (built-in policies): the digest of the parts'
    # keys is then remembered. A user's policy could name itself differently each time.
    _fixed_names: bool = field(init=False, default=False, compare=False)

    def __post_init__(self) -> None:
        fixed = all(_has_fixed_name(policy) for policy in self.policies)
        object.__setattr__(self, "_fixed_names", fixed)

    @property
    def name(self) -> str:  # type: ignore[override]
        return " + ".join(repr(policy) for policy in self.policies)

    def compute_key(
        self, context: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        keys = []
        for policy in self.policies:
            key = policy.compute_key(context, inputs, flow_parameters)
            if key is None:
                return None
            keys.append(key)
        memo_key = (self, tuple(keys)) if self._fixed_names else None
        combined = None if memo_key is None else _combined_keys.get(memo_key)
        if combined is None:
            digest = hashlib.sha256()
            for policy, key in zip(self.policies, keys, strict=True):
                digest.update(f"{policy!r}\x00{key}\x00".encode())
            combined = digest.hexdigest()
            if memo_key is not None:
                _remember(_combined_keys, memo_key, combined)
        return combined


class NoCache(CachePolicy):
    """Never cache (the default)."""

    name = "NONE"

    def compute_key(
        self, context: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        return None


@dataclass(frozen=True, repr=False, eq=False)
class Inputs(CachePolicy):
    """The call's arguments, except those named in ``exclude``."""

    exclude: tuple[str, ...] = ()

    @property
    def name(self) -> str:  # type: ignore[override]
        return "INPUTS" + "".join(f" - {name!r}" for name in self.exclude)

    def __sub__(self, names: str | Iterable[str]) -> Inputs:
        more = (names,) if isinstance(names, str) else tuple(names)
        return Inputs(exclude=(*self.exclude, *more))

    def compute_key(
        self, context: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        if self.exclude:
            inputs = {name: value for name, value in inputs.items() if name not in self.exclude}
        return digest_arguments(inputs)


class TaskSource(CachePolicy):
    """The task's identity and source code."""

    name = "TASK_SOURCE"

    def compute_key(
        self, context: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        # By the task's identity, which covers its source (see Task.identity).
        identity = context.task.identity()
        key = _source_keys.get(identity)
        if key is None:
            key = str(context.task.source_digest().hexdigest())
            _remember(_source_keys, identity, key)
        return key


class FlowParameters(CachePolicy):
    """The parameters of the enclosing flow run (no key outside a flow)."""

    name = "FLOW_PARAMETERS"

    def compute_key(
        self, context: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        flow_context = context.flow_run_context
        if flow_context is None:
            return None
        if flow_context.parameters_digest is None:
            flow_context.parameters_digest = stable_digest(flow_parameters)
        return flow_context.parameters_digest


class RunId(CachePolicy):
    """The enclosing flow run's id (no key outside a flow)."""

    name = "RUN_ID"

    def compute_key(
        self, context: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        if context.flow_run_context is None:
            return None
        return context.flow_run_context.flow_run.id


@dataclass(frozen=True, repr=False, eq=False)
class CacheKeyFnPolicy(CachePolicy):
    """A ``cache_key_fn(context, parameters)`` as a policy; its key is used as given.

    ``task_input_hash`` is a pure function of the task's source and the arguments: its
    keys for plain scalar arguments are remembered (a task called again and again with
    the same inputs hashes them once). Any other function is called every time.
    """

    fn: Callable[[TaskRunContext, dict[str, Any]], str | None]
    _pure: bool = field(init=False, default=False, compare=False)

    def __post_init__(self) -> None:
        tasks = sys.modules.get("riverrun.tasks")  # (imported by then if fn is from it)
        pure = tasks is not None and self.fn is getattr(tasks, "task_input_hash", None)
        object.__setattr__(self, "_pure", pure)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"cache_key_fn={getattr(self.fn, '__qualname__', self.fn)!s}"

    def compute_key(
        self, context: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        if self._pure:
            arguments = scalar_key(inputs)
            if arguments is not None:
                # The task's identity covers its source (and name): see Task.identity.
                memo_key = (context.task.identity(), arguments)
                key = _input_hash_keys.get(memo_key)
                if key is None:
                    key = self.fn(context, dict(inputs))
                    if key is not None and not isinstance(key, str):
                        raise TypeError(f"cache_key_fn returned {key!r}, not a string")
                    if key is not None:
                        _remember(_input_hash_keys, memo_key, key)
                return key
        key = self.fn(context, dict(inputs))
        if key is not None and not isinstance(key, str):
            raise TypeError(f"cache_key_fn returned {key!r}, not a string")
        return key


# Keys that are pure functions of what they are remembered by (so right in every store
# and process): task_input_hash's by task identity and scalar arguments, TASK_SOURCE's
# by task identity, a compound policy's digest by the policy and its parts' keys.
_MEMO_ENTRIES = 4096
_input_hash_keys: dict[tuple[str, tuple[Any, ...]], str] = {}
_source_keys: dict[str, str] = {}
_combined_keys: dict[tuple[CompoundCachePolicy, tuple[str, ...]], str] = {}


def _has_fixed_name(policy: CachePolicy) -> bool:
    if isinstance(policy, CacheKeyFnPolicy):
        return type(policy) is CacheKeyFnPolicy and isinstance(policy.fn, types.FunctionType)
    return type(policy) in (Inputs, TaskSource, FlowParameters, RunId, NoCache)


def _remember(memo: dict[Any, str], key: Any, value: str) -> None:
    if len(memo) >= _MEMO_ENTRIES:
        memo.clear()
    memo[key] = value


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NONE = NoCache()
