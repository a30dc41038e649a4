"""Which state transitions are legal, and how retries are decided."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from riverrun.exceptions import RiverrunError
from riverrun.states import FINAL_TYPES, StateType

__all__ = [
    "IllegalTransitionError",
    "RetryDelaySeconds",
    "RetryPolicy",
    "check_transition",
    "normalise_delays",
    "retry_delay",
    "should_retry",
]

if TYPE_CHECKING:
    from random import Random

S = StateType

# Where a run may go from each state. A final state is left only to run again, and
# then through SCHEDULED or PENDING first (a retry or a manual re-run): never straight
# back to RUNNING, which would rewrite a finished run in place.
_ALLOWED: dict[StateType | None, frozenset[StateType]] = {
    None: frozenset({S.SCHEDULED, S.PENDING, S.RUNNING, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.SCHEDULED: frozenset(
        {S.SCHEDULED, S.PENDING, S.RUNNING, S.CANCELLING, S.CANCELLED, S.CRASHED, S.FAILED}
    ),
    S.PENDING: frozenset(
        {
            S.SCHEDULED,
            S.RUNNING,
            S.COMPLETED,
            S.FAILED,
            S.CRASHED,
            S.CANCELLING,
            S.CANCELLED,
        }
    ),
    S.RUNNING: frozenset(
        {
            S.RUNNING,
            S.SCHEDULED,
            S.COMPLETED,
            S.FAILED,
            S.CRASHED,
            S.CANCELLING,
            S.CANCELLED,
            S.PAUSED,
        }
    ),
    S.PAUSED: frozenset({S.RUNNING, S.SCHEDULED, S.CANCELLING, S.CANCELLED, S.CRASHED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.CRASHED, S.COMPLETED, S.FAILED}),
}
for _final in FINAL_TYPES:
    _ALLOWED[_final] = frozenset({S.SCHEDULED, S.PENDING})


class IllegalTransitionError(RiverrunError):
    """A run was asked to move between two states the rules forbid.

    Attributes:
        current: the run's state type, or ``None`` for a new run.
        proposed: the state type that was refused.
    """

    def __init__(self, current: StateType | None, proposed: StateType) -> None:
        self.current = current
        self.proposed = proposed
        where = current.value if current else "a new run"
        super().__init__(f"Cannot move from {where} to {proposed.value}")


def check_transition(current: StateType | None, proposed: StateType) -> None:
    """Raise ``IllegalTransitionError`` unless ``current → proposed`` is allowed."""
    if proposed not in _ALLOWED[current]:
        raise IllegalTransitionError(current, proposed)


RetryDelay = float | Sequence[float]
# What users may pass as retry_delay_seconds (exponential_backoff gives the callable).
RetryDelaySeconds = float | Sequence[float] | Callable[[int], Sequence[float]] | None


def should_retry(
    *,
    attempt: int,
    retries: int,
    error: BaseException,
    condition: Callable[[BaseException], bool] | None = None,
) -> bool:
    """Whether a run that failed on ``attempt`` (1-based) with ``error`` runs again.

    ``condition`` is the user's ``retry_condition_fn`` already adapted to take the
    error; when it returns false the failure is final whatever retries remain.
    """
    if attempt > retries:
        return False
    return condition is None or bool(condition(error))


def retry_delay(
    *,
    attempt: int,
    delays: RetryDelay,
    jitter_factor: float | None = None,
    rng: Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    ``delays`` is one number for every retry or a list with one entry per retry (the
    last entry repeats when there are more retries than entries). With
    ``jitter_factor`` the delay is spread uniformly over ``delay * (1 ± jitter)``,
    never below zero, so that many failing runs do not retry in lockstep.
    """
    if isinstance(delays, int | float):
        base = float(delays)
    elif len(delays) == 0:
        base = 0.0
    else:
        base = float(delays[min(attempt, len(delays)) - 1])
    if not jitter_factor or base <= 0:
        return max(base, 0.0)
    spread = base * jitter_factor
    if rng is None:
        import random

        return max(0.0, base + random.uniform(-spread, spread))
    return max(0.0, base + rng.uniform(-spread, spread))


class RetryPolicy:
    """How a flow or task retries and how long an attempt may take (checked on creation)."""

    __slots__ = ("delays", "jitter_factor", "retries", "timeout_seconds")

    def __init__(
        self,
        *,
        retries: int = 0,
        delays: float | Sequence[float] = 0.0,
        jitter_factor: float | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        self.retries = retries
        self.delays = delays
        self.jitter_factor = jitter_factor
        self.timeout_seconds = timeout_seconds
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if isinstance(self.delays, int | float):
            if self.delays < 0:
                raise ValueError(f"retry_delay_seconds must be >= 0, got {self.delays}")
        elif any(delay < 0 for delay in self.delays):
            raise ValueError(f"retry_delay_seconds must all be >= 0, got {list(self.delays)}")
        if self.jitter_factor is not None and self.jitter_factor < 0:
            raise ValueError(f"retry_jitter_factor must be >= 0, got {self.jitter_factor}")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {self.timeout_seconds}")


def normalise_delays(value: RetryDelaySeconds, retries: int) -> float | Sequence[float]:
    """``retry_delay_seconds`` as a number or list (``exponential_backoff`` expanded)."""
    if value is None:
        return 0.0
    if callable(value):
        return [float(delay) for delay in value(retries)]
    if isinstance(value, int | float):
        return float(value)
    return [float(delay) for delay in value]
