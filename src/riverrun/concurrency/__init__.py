"""Concurrency limits and rate limits, shared by every thread, process and machine that
uses the same store.

``riverrun.concurrency.sync`` and ``riverrun.concurrency.asyncio`` hold the same two
names, ``concurrency`` and ``rate_limit``; the async twins never block the event loop.

Invariants:
- A limit is created once (``riverrun concurrency-limit create NAME LIMIT``); the
  same named limit also caps task runs tagged with its name (one slot each, for the
  whole run).
- Slots are leases: renewed while held, released on leaving the block, and expired
  ``RIVERRUN_CONCURRENCY_LEASE_SECONDS`` after a holder dies. They never leak.
- Waiters are served first come, first served; a release in this process wakes its
  waiters at once.
- ``concurrency("missing")`` raises ``ConcurrencyLimitNotFoundError`` naming the command
  that creates it: a typo must not silently mean "unlimited". With
  ``create_if_missing=True`` a missing limit is created with ``occupy`` slots (the block
  is then exclusive until the limit is raised with ``concurrency-limit update``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from riverrun.store.protocol import RunStore

__all__: list[str] = []


def limit_names(names: str | Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple without repeats (a single name may be passed as a string)."""
    if isinstance(names, str):
        return (names,)
    listed = tuple(dict.fromkeys(names))
    if not listed:
        raise ValueError("name at least one concurrency limit")
    return listed


def current_store() -> RunStore:
    """The store of the flow run in progress, or the configured one outside a run."""
    from riverrun.context import flow_run_context
    from riverrun.store import get_store

    context = flow_run_context.get()
    return context.store if context is not None else get_store()
