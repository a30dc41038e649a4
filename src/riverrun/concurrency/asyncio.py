"""``concurrency`` and ``rate_limit`` for async code: they never block the event loop.

Example:
    >>> from riverrun.concurrency.asyncio import concurrency
    >>> async with concurrency("external-api", occupy=1):
    ...     await client.get(url)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from riverrun.concurrency import current_store, limit_names
from riverrun.engine import slots

__all__ = ["concurrency", "rate_limit"]


@asynccontextmanager
async def concurrency(
    names: str | Sequence[str],
    occupy: int = 1,
    *,
    timeout_seconds: float | None = None,
    create_if_missing: bool = False,
) -> AsyncIterator[None]:
    """The async twin of ``riverrun.concurrency.sync.concurrency`` (same arguments and
    errors): waiting and store calls happen off the event loop."""
    store = current_store()
    held = await slots.aacquire(
        store,
        limit_names(names),
        occupy,
        hold=True,
        timeout_seconds=timeout_seconds,
        create_if_missing=create_if_missing,
    )
    try:
        yield
    finally:
        await slots.arelease(held)


async def rate_limit(
    names: str | Sequence[str], occupy: int = 1, *, timeout_seconds: float | None = None
) -> None:
    """The async twin of ``riverrun.concurrency.sync.rate_limit``."""
    store = current_store()
    await slots.aacquire(
        store, limit_names(names), occupy, hold=False, timeout_seconds=timeout_seconds
    )
