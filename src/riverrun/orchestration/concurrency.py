"""Concurrency slot rules: who may take slots of a named limit, and when to ask again.

Pure: no I/O. The embedded store (and the server) call these inside the one transaction
that holds the limit rows locked, so every process and machine applies the same rules.

The model, in one formula: at any moment, for each limit,

    held slots (unexpired leases) + rate slots (not yet decayed) + request <= limit

- A *lease* holds slots until it is released or expires; its holder renews it while it
  runs, so a holder killed with ``kill -9`` loses its slots ``lease_seconds`` later.
- A limit with ``slot_decay_per_second > 0`` is also a token bucket for ``rate_limit``:
  slots taken by a rate call are never released but decay at that rate, so a limit of
  ``N`` with a decay of ``R`` allows bursts of ``N`` and ``R`` calls per second after.
  The bucket is one number, ``rate_empty_at``: the time the decaying slots reach zero.
- Waiters are served first come, first served: a request that cannot be granted takes a
  ticket, and a request is granted only when no live waiter with a smaller ticket wants
  any of its limits. Tickets are ordered consistently across limits, so a request for
  several limits at once can never deadlock with another.
- A limit of 0 pauses it: requests wait until it is raised. A request larger than a
  non-zero limit could never be granted, so it is refused at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "FIRST_POLL_SECONDS",
    "MAX_POLL_SECONDS",
    "LimitUsage",
    "Verdict",
    "bucket_level",
    "check_request",
    "decide",
    "next_poll",
    "rate_empty_at_after",
    "renew_interval",
    "validate_decay",
    "validate_limit",
    "validate_name",
    "validate_occupy",
]

#: How long a lease (and a waiter's place in line) lives without being renewed.
DEFAULT_LEASE_SECONDS = 30.0
#: A waiter in another process than the releasing one asks again after this long,
#: doubling up to ``MAX_POLL_SECONDS`` (a release in its own process wakes it at once).
FIRST_POLL_SECONDS = 0.01
MAX_POLL_SECONDS = 0.1
# Rounding slack for the bucket's float arithmetic.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """One limit as its row and its unexpired leases show it, at decision time.

    Attributes:
        held: slots held by unexpired leases.
        rate_empty_at: epoch seconds when the rate slots have all decayed (``None``:
            no rate slots were ever taken).
    """

    name: str
    limit: int
    slot_decay_per_second: float
    held: int
    rate_empty_at: float | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to one request.

    Attributes:
        granted: the slots may be taken now.
        retry_after: when not granted, the seconds until decay alone frees enough slots
            (``None``: only a release, a reset or a raised limit can).
    """

    granted: bool
    retry_after: float | None = None


def validate_name(name: object) -> str:
    """Return ``name`` if it can name a limit (a non-empty string of at most 255
    characters without surrounding blanks or control characters); else raise."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a concurrency limit name must be a non-empty string, got {name!r}")
    if len(name) > 255:
        raise ValueError(f"concurrency limit name {name[:40]!r}... is longer than 255 characters")
    if name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(
            f"concurrency limit name {name!r} has surrounding blanks or control characters"
        )
    return name


def validate_limit(limit: object) -> int:
    """Return ``limit`` if it is a whole number of slots, 0 or more (0 pauses)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"a concurrency limit must be a whole number >= 0, got {limit!r}")
    return limit


def validate_decay(decay: object) -> float:
    """Return ``decay`` as a float if it is a finite number of slots per second >= 0."""
    if isinstance(decay, bool) or not isinstance(decay, int | float):
        raise ValueError(f"slot_decay_per_second must be a number >= 0, got {decay!r}")
    value = float(decay)
    if not (0 <= value < math.inf):
        raise ValueError(f"slot_decay_per_second must be a finite number >= 0, got {decay!r}")
    return value


def validate_occupy(occupy: object) -> int:
    """Return ``occupy`` if it is a whole number of slots, 1 or more."""
    if isinstance(occupy, bool) or not isinstance(occupy, int) or occupy < 1:
        raise ValueError(f"occupy must be a whole number >= 1, got {occupy!r}")
    return occupy


def bucket_level(usage: LimitUsage, now: float) -> float:
    """The rate slots of ``usage`` not yet decayed at ``now``."""
    if usage.rate_empty_at is None or usage.slot_decay_per_second <= 0:
        return 0.0
    return max(0.0, usage.rate_empty_at - now) * usage.slot_decay_per_second


def check_request(usage: LimitUsage, occupy: int, *, hold: bool) -> None:
    """Raise ``ValueError`` when a request could never be granted by ``usage``'s limit.

    Args:
        hold: a lease (``concurrency``) rather than decaying rate slots (``rate_limit``).
    """
    if 0 < usage.limit < occupy:
        raise ValueError(
            f"cannot occupy {occupy} slots of concurrency limit {usage.name!r}: "
            f"it has only {usage.limit}"
        )
    if not hold and usage.slot_decay_per_second <= 0:
        raise ValueError(
            f"rate_limit needs a limit whose slots decay, and {usage.name!r} has no "
            f"slot decay: riverrun concurrency-limit update {usage.name} "
            "--slot-decay-per-second N"
        )


def decide(
    usages: Sequence[LimitUsage], occupy: int, *, first_in_line: bool, now: float
) -> Verdict:
    """Whether ``occupy`` slots of every limit in ``usages`` may be taken at ``now``.

    Args:
        first_in_line: no live waiter ahead of this request wants any of these limits.
    """
    retry_after: float | None = 0.0
    for usage in usages:
        free_for_rate = usage.limit - usage.held - occupy
        if usage.limit == 0 or free_for_rate < 0:
            retry_after = None  # needs a release (or a raised limit), not time
            continue
        level = bucket_level(usage, now)
        if level > free_for_rate + _EPSILON and retry_after is not None:
            retry_after = max(retry_after, (level - free_for_rate) / usage.slot_decay_per_second)
    if retry_after == 0.0 and first_in_line:
        return Verdict(granted=True)
    return Verdict(granted=False, retry_after=retry_after if retry_after else None)


def rate_empty_at_after(usage: LimitUsage, occupy: int, now: float) -> float:
    """The bucket's new ``rate_empty_at`` once ``occupy`` rate slots are taken at ``now``."""
    start = now if usage.rate_empty_at is None else max(usage.rate_empty_at, now)
    return start + occupy / usage.slot_decay_per_second


def next_poll(previous: float | None) -> float:
    """The pause before a waiter asks again: doubling from ``FIRST_POLL_SECONDS`` up
    to ``MAX_POLL_SECONDS``."""
    if previous is None:
        return FIRST_POLL_SECONDS
    return min(previous * 2, MAX_POLL_SECONDS)


def renew_interval(lease_seconds: float) -> float:
    """How often a holder renews its leases: three times per lease, so one slow or
    failed renewal does not lose the slots."""
    return lease_seconds / 3
