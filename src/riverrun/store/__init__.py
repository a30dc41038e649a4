"""Store: the one protocol the engine uses to record and read runs.

Invariants:
- The engine talks only to ``RunStore`` (``protocol.py``); it never imports ``db/``
  directly, so the HTTP store can replace the embedded one without touching it.
- Creating a flow run and reading or writing cache entries are synchronous: when the
  call returns the row is committed. Task runs, states and logs are write-behind: they
  are queued in memory and committed in one transaction per flush (on an interval, when
  a flow run ends, and at interpreter exit), so the per-task cost is an append.
- ``get_store()`` picks the implementation from the settings — ``HttpStore``
  (``http.py``) when ``RIVERRUN_API_URL`` is set, else ``EmbeddedStore`` — and keeps one
  per URL for the life of the process. The HTTP store spools what a server cannot take
  (``spool.py``) and delivers it later: nothing is lost, nothing recorded twice.
"""

from __future__ import annotations

import os
import threading

from riverrun.settings import Settings, get_settings
from riverrun.store.protocol import CacheEntry, FlowRun, LogEntry, RunStore, TaskRun

__all__ = [
    "CacheEntry",
    "FlowRun",
    "LogEntry",
    "RunStore",
    "TaskRun",
    "close_stores",
    "get_store",
]

_stores: dict[str, RunStore] = {}
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for store in _stores.values():
        after_fork = getattr(store, "after_fork_in_child", None)
        if after_fork is not None:
            after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def get_store(settings: Settings | None = None) -> RunStore:
    """Return this process's store for the configured database."""
    settings = settings or get_settings()
    key = f"api:{settings.api_url}" if settings.api_url else settings.database_url
    store = _stores.get(key)
    if store is None:
        with _lock:
            store = _stores.get(key)
            if store is None:
                if settings.api_url:
                    from riverrun.store.http import HttpStore

                    store = HttpStore(settings)
                else:
                    from riverrun.store.embedded import EmbeddedStore

                    store = EmbeddedStore(settings)
                _stores[key] = store
    return store


def close_stores() -> None:
    """Flush and close every open store (at exit, and between tests)."""
    with _lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close()
