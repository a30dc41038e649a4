"""Cache keys, cache lookups, persisted results and the lock on a cache key.

A task run is cached when its task has a cache policy that gives a key; its result
is then persisted (caching reads it back from disk, in any process). A result is also
persisted, without caching, when ``persist_result`` says so (the task's option, else
its flow's, else ``RIVERRUN_RESULTS_PERSIST_BY_DEFAULT``): a resumed flow run then
reuses it instead of running the task again.

Two runs computing the same key at once: the first takes the key's lock (a file lock
in the storage folder, so threads and processes on this machine agree), the second
waits for it and then finds the entry the first wrote.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riverrun.cache_policies import CacheKeyFnPolicy
from riverrun.engine import results
from riverrun.engine.core import describe
from riverrun.engine.results import ResultRef
from riverrun.exceptions import InvalidResultStorageKeyError
from riverrun.hashing import digest_arguments
from riverrun.serializers import Serializer, get_serializer
from riverrun.store.protocol import CacheEntry

if TYPE_CHECKING:
    from riverrun.context import FlowRunContext, TaskRunContext
    from riverrun.logging import RunLogger
    from riverrun.store.protocol import RunStore, TaskRun
    from riverrun.tasks import Task

__all__ = [
    "MISS",
    "KeyLock",
    "ResultDefaults",
    "ResultPlan",
    "cache_key",
    "inputs_digest",
    "plan_results",
    "read_cache",
    "write_cache",
    "write_persisted",
]

MISS = object()

#: The clock cache expiry is judged by (tests pass time in by replacing it).
now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731

#: The clock that spaces out the checks of a remembered entry's file (tests replace it).
monotonic: Callable[[], float] = time.monotonic

# Entries this process has read or written, by store, then key, each with its decoded
# reference and the path of its file. An entry's location never changes for its key and
# its expiration only moves later, so a remembered entry is safe to use until it
# expires. The result file itself is checked (one ``stat``) by the first hit of each
# flow run and then at most every ``RECHECK_SECONDS``: that is how a refresh or a
# ``riverrun cache clear`` in another process is noticed. Not on every hit: a ``stat``
# releases the interpreter lock, and taking it back from the flusher and console
# threads cost a hit about three times the rest of its work.
# Weakly keyed by the store object: a store opened later at the same address (as
# ``id()`` would allow) must not see a closed store's entries.
_MEMO_ENTRIES = 4096
RECHECK_SECONDS = 1.0


@dataclass(slots=True)
class _Kept:
    """A remembered entry, with what a hit needs to read its file."""

    entry: CacheEntry
    ref: ResultRef
    where: str  # str(ref.path): checked once, when remembered
    # The flow run whose hit last checked the file, and when (``monotonic``).
    checked_by: str | None = None
    checked_at: float = 0.0


_entries: weakref.WeakKeyDictionary[RunStore, dict[str, _Kept]] = weakref.WeakKeyDictionary()


@dataclass(slots=True, frozen=True)
class ResultDefaults:
    """A flow run's defaults for its tasks' results (from the flow and the settings)."""

    persist: bool
    storage: Path
    serializer: Serializer


@dataclass(slots=True, frozen=True)
class ResultPlan:
    """Where one task run's result goes, decided before the run starts."""

    storage: Path
    serializer: Serializer
    key: str | None  # None: named after the cache key, or else the task run's id

    def ref(self, task_run: TaskRun, inputs: str | None, task: str | None) -> ResultRef:
        key = self.key
        if key is None:
            key = (
                results.key_for_cache(task_run.cache_key)
                if task_run.cache_key is not None
                else task_run.id
            )
        return ResultRef(str(self.storage), key, self.serializer.name, inputs, task)


_last_plan: ResultPlan | None = None  # see plan_results


def expired(entry: CacheEntry, at: datetime) -> bool:
    """Whether ``entry`` has expired at time ``at``."""
    return entry.expiration is not None and entry.expiration <= at


def _remember(store: RunStore, entry: CacheEntry, ref: ResultRef) -> None:
    """Remember ``entry`` (found or written at ``ref``) when its file is named after its
    key: another process refreshing the key rewrites that same file, which every hit
    checks. Entries naming another file (a fixed ``result_storage_key``) are always
    read from the store."""
    if ref.key != results.key_for_cache(entry.key) or not entry.location.startswith("{"):
        return  # (a bare file name, recorded before 0.3, is resolved against a home)
    try:
        where = str(ref.path)
    except InvalidResultStorageKeyError:
        return
    entries = _entries.get(store)
    if entries is None:
        entries = _entries[store] = {}
    elif len(entries) >= _MEMO_ENTRIES:
        entries.clear()
    entries[entry.key] = _Kept(entry, ref, where)


def forget_entries() -> None:
    """Drop the remembered entries (after ``riverrun cache clear`` in this process)."""
    _entries.clear()


def plan_results(
    task: Task[..., Any], flow_context: FlowRunContext, parameters: dict[str, Any], run: TaskRun
) -> ResultPlan | None:
    """Where this run's result is persisted, or ``None`` when it is not.

    Raises:
        InvalidResultStorageKeyError: the task's ``result_storage_key`` cannot be
            filled in, or leaves the storage folder.
    """
    defaults = flow_context.results
    persist = task.persist_result
    if persist is None:
        persist = defaults.persist if defaults is not None else False
    if not persist and task.cache_policy is None:
        return None
    global _last_plan
    storage = task.result_storage or (
        defaults.storage
        if defaults is not None
        else results.default_storage(flow_context.settings.home)
    )
    serializer = task.result_serializer or (
        defaults.serializer if defaults is not None else get_serializer("pickle")
    )
    if task.result_storage_key is not None:
        flow_run = flow_context.flow_run
        key = results.render_key(
            task.result_storage_key, parameters, task_run=run, flow_run=flow_run
        )
        return ResultPlan(storage, serializer, key)
    # Most runs share the same plan: the last one made is reused (a plan is immutable).
    last = _last_plan
    if last is not None and last.storage is storage and last.serializer is serializer:
        return last
    plan = _last_plan = ResultPlan(storage, serializer, None)
    return plan


def cache_key(task: Task[..., Any], context: TaskRunContext, logger: RunLogger) -> str | None:
    """The run's cache key, or ``None`` (not cached, with a warning when the policy
    could not give one)."""
    policy = task.cache_policy
    if policy is None:
        return None
    flow_context = context.flow_run_context
    flow_parameters: dict[str, Any] = {}
    if flow_context is not None:
        flow_parameters = flow_context.parameters or flow_context.flow_run.parameters
    try:
        key = policy.compute_key(context, context.parameters, flow_parameters)
    except Exception as error:
        logger.warning(
            "Cache policy %r failed (%s); this run is not cached", policy, describe(error)
        )
        return None
    if key is None:
        return None
    if not isinstance(key, str):
        logger.warning("Cache policy %r gave %r, not a string; this run is not cached", policy, key)
        return None
    if isinstance(policy, CacheKeyFnPolicy):
        return key  # a key the user made is used as given (tasks may share it on purpose)
    # Built-in policies are scoped to the task: INPUTS alone never hands one task's
    # result to another task called with the same arguments.
    memo_key = (task.key, task.name, key)
    scoped = _scoped_keys.get(memo_key)
    if scoped is None:
        scoped = hashlib.sha256(f"{task.key}\x00{task.name}\x00{key}".encode()).hexdigest()
        if len(_scoped_keys) >= _MEMO_ENTRIES:
            _scoped_keys.clear()
        _scoped_keys[memo_key] = scoped
    return scoped


# Scoped keys by (task key, task name, policy key): a pure function of those.
_scoped_keys: dict[tuple[str, str, str], str] = {}


def inputs_digest(parameters: dict[str, Any]) -> str | None:
    """A digest of a run's arguments, recorded with its persisted result: a resumed run
    reuses the result only for the same arguments (``None``: cannot be hashed)."""
    try:
        return digest_arguments(parameters)
    except Exception:  # no stable form: the result is kept, but never reused on resume
        return None


def read_cache(flow_context: FlowRunContext, key: str, logger: RunLogger) -> Any:
    """``(value, recorded reference)`` cached for ``key``, or ``MISS``."""
    store = flow_context.store
    remembered_entries = _entries.get(store)
    kept = None if remembered_entries is None else remembered_entries.get(key)
    if kept is not None:
        # The hit path: no store query, no decoding; the file is checked by read_at.
        entry = kept.entry
        if entry.expiration is None or entry.expiration > now():
            run_id, at = flow_context.flow_run.id, monotonic()
            check = kept.checked_by != run_id or at - kept.checked_at >= RECHECK_SECONDS
            try:
                value = results.read_at(kept.where, kept.ref, check=check)
                if check:
                    kept.checked_by, kept.checked_at = run_id, at
                return value, entry.location
            except (FileNotFoundError, results.OverwrittenResultError):
                pass  # refreshed or cleared elsewhere: the store has the truth
            except Exception as error:
                logger.warning("Cached result for key %s is unreadable (%s); running", key, error)
                return MISS
        # Expired here (the store may hold a later expiration) or the file changed.
        if remembered_entries is not None:
            remembered_entries.pop(key, None)
    try:
        found = store.read_cache_entry(key)
    except Exception as error:
        logger.warning("Could not look up the cache (%s); running", describe(error))
        return MISS
    if found is None or expired(found, now()):
        return MISS
    try:
        ref = ResultRef.decode(found.location, flow_context.settings.home)
        value = results.read_result(ref)
    except (FileNotFoundError, results.OverwrittenResultError):
        return MISS
    except Exception as error:
        logger.warning("Cached result for key %s is unreadable (%s); running", key, error)
        return MISS
    _remember(store, found, ref)  # see write_cache
    return value, found.location


def write_persisted(
    ref: ResultRef, value: Any, plan: ResultPlan, logger: RunLogger
) -> ResultRef | None:
    """Persist ``value``; the reference written (with its digest), or ``None`` after
    logging why it could not be (the run still completes)."""
    try:
        return results.write_result(ref, value, plan.serializer)
    except Exception as error:
        logger.warning(
            "The result (%s) could not be persisted with %r (%s); it is not cached, and a "
            "resumed flow run will run this task again",
            type(value).__name__,
            plan.serializer.name,
            describe(error),
        )
        return None


def write_cache(
    task: Task[..., Any], flow_context: FlowRunContext, key: str, ref: ResultRef, logger: RunLogger
) -> None:
    """Record the cache entry for a result already persisted at ``ref``."""
    created = now()
    entry = CacheEntry(
        key=key,
        location=ref.encode(),
        expiration=created + task.cache_expiration if task.cache_expiration else None,
        created=created,
        task_name=task.name,
    )
    try:
        flow_context.store.write_cache_entry(entry)
    except Exception as error:
        logger.warning("Could not record the cache entry (%s); it will be computed again", error)
        return
    _remember(flow_context.store, entry, ref)


# -- the lock on a key ------------------------------------------------------------------


class KeyLock:
    """The lock on one cache key, shared by every thread and process of this machine
    that persists into the same storage folder (an ``flock`` on a file in
    ``.locks/``). The kernel drops it when the holder's process dies, so a killed run
    never leaves a key locked."""

    __slots__ = ("_descriptor",)

    def __init__(self, storage: Path, key: str) -> None:
        folder = storage / ".locks"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / hashlib.sha256(key.encode()).hexdigest()
        self._descriptor: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def try_acquire(self) -> bool:
        import fcntl

        assert self._descriptor is not None
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire_later(self) -> Future[None]:
        """A future done once a helper thread holds the lock (for the run loop to wait
        on: neither an event loop nor the caller's thread blocks in the kernel)."""
        import fcntl

        held: Future[None] = Future()
        descriptor = self._descriptor
        assert descriptor is not None

        def take() -> None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                held.set_result(None)
            except BaseException as error:
                held.set_exception(error)

        threading.Thread(target=take, name="riverrun-cache-lock", daemon=True).start()
        return held

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing the file drops the lock
            self._descriptor = None
