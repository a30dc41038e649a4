"""Cache keys, lookups and writes for a task run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from riverrun.engine import results
from riverrun.engine.core import describe
from riverrun.store.protocol import CacheEntry

if TYPE_CHECKING:
    from riverrun.context import FlowRunContext, TaskRunContext
    from riverrun.logging import RunLogger
    from riverrun.tasks import Task

__all__ = ["MISS", "cache_key", "read_cache", "write_cache"]

MISS = object()

# Entries this process has read or written, by (store, key). An entry's location never
# changes for its key and its expiration only moves later, so a remembered entry is
# safe to use until it expires; the result file itself is checked on every read.
_MEMO_ENTRIES = 4096
_entries: dict[tuple[int, str], CacheEntry] = {}


def _expired(entry: CacheEntry) -> bool:
    return entry.expiration is not None and entry.expiration <= datetime.now(UTC)


def _remember(memo_key: tuple[int, str], entry: CacheEntry) -> None:
    if len(_entries) >= _MEMO_ENTRIES:
        _entries.clear()
    _entries[memo_key] = entry


def cache_key(task: Task[..., Any], context: TaskRunContext, logger: RunLogger) -> str | None:
    if task.cache_key_fn is None:
        return None
    try:
        key = task.cache_key_fn(context, dict(context.parameters))
    except Exception as error:
        logger.warning("cache_key_fn raised %s; this run is not cached", describe(error))
        return None
    if key is not None and not isinstance(key, str):
        logger.warning("cache_key_fn returned %r, not a string; this run is not cached", key)
        return None
    return key


def read_cache(flow_context: FlowRunContext, key: str, logger: RunLogger) -> Any:
    store = flow_context.store
    memo_key = (id(store), key)
    entry = _entries.get(memo_key)
    if entry is None or _expired(entry):
        try:
            entry = store.read_cache_entry(key)
        except Exception as error:
            logger.warning("Could not look up the cache (%s); running", describe(error))
            return MISS
        if entry is None or _expired(entry):
            return MISS
        _remember(memo_key, entry)
    try:
        return results.read_result(flow_context.settings.home, entry.location)
    except FileNotFoundError:
        _entries.pop(memo_key, None)
        return MISS
    except Exception as error:
        logger.warning("Cached result for key %s is unreadable (%s); running", key, error)
        return MISS


def write_cache(
    task: Task[..., Any], flow_context: FlowRunContext, key: str, value: Any, logger: RunLogger
) -> None:
    now = datetime.now(UTC)
    try:
        location = results.write_result(flow_context.settings.home, key, value)
        entry = CacheEntry(
            key=key,
            location=location,
            expiration=now + task.cache_expiration if task.cache_expiration else None,
            created=now,
        )
        flow_context.store.write_cache_entry(entry)
        _remember((id(flow_context.store), key), entry)
    except Exception as error:
        logger.warning("Could not cache the result (%s); it will be computed again", error)
