"""``concurrency`` and ``rate_limit`` for sync code.

Example:
    >>> from riverrun.concurrency.sync import concurrency, rate_limit
    >>> with concurrency("external-api", occupy=1):
    ...     call_the_api()
    >>> rate_limit("search-api")  # waits for its turn: N calls per second
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from riverrun.concurrency import current_store, limit_names
from riverrun.engine import slots

__all__ = ["concurrency", "rate_limit"]


@contextmanager
def concurrency(
    names: str | Sequence[str],
    occupy: int = 1,
    *,
    timeout_seconds: float | None = None,
    create_if_missing: bool = False,
) -> Iterator[None]:
    """Hold ``occupy`` slots of each named limit for the length of the block.

    Several names are taken together or not at all. The slots are released on leaving
    the block (also by an exception), and expire if this process dies.

    Raises:
        ConcurrencyLimitNotFoundError: a limit does not exist (unless
            ``create_if_missing``, which creates it with ``occupy`` slots).
        AcquireConcurrencySlotTimeoutError: not granted within ``timeout_seconds``.
        ValueError: ``occupy`` is more than a limit has.

    Example:
        >>> with concurrency("external-api", occupy=1):
        ...     httpx.get(url)
    """
    store = current_store()
    held = slots.acquire(
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
        slots.release(held)


def rate_limit(
    names: str | Sequence[str], occupy: int = 1, *, timeout_seconds: float | None = None
) -> None:
    """Wait until ``occupy`` slots of each named limit are free, and take them for good:
    they free themselves at the limit's ``slot_decay_per_second``.

    A limit created with ``riverrun concurrency-limit create NAME N
    --slot-decay-per-second R`` allows a burst of ``N`` calls, then ``R`` per second,
    evenly spaced, across every process using the store.

    Raises:
        ConcurrencyLimitNotFoundError: a limit does not exist.
        AcquireConcurrencySlotTimeoutError: not granted within ``timeout_seconds``.
        ValueError: a limit has no slot decay, or fewer than ``occupy`` slots.
    """
    store = current_store()
    slots.acquire(store, limit_names(names), occupy, hold=False, timeout_seconds=timeout_seconds)
