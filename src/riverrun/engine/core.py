"""Pieces shared by the flow and task run loops: states, retries, hooks, failures."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from riverrun.engine.effects import Hook, Outcome, RunLoop, Sleep
from riverrun.exceptions import RunTimeoutError
from riverrun.logging import RunLogger
from riverrun.orchestration import RetryPolicy, check_transition, retry_delay, should_retry
from riverrun.states import (
    AwaitingRetry,
    Cancelled,
    Crashed,
    Failed,
    State,
    StateType,
    TimedOut,
)
from riverrun.store.protocol import FlowRun, RunStore, TaskRun

__all__ = [
    "attempt_error",
    "describe",
    "failure_state",
    "log_final",
    "name_from_template",
    "propose",
    "retry_pause",
    "run_hooks",
]

# Read per task run: module names, not Enum class attributes (see states.py).
_RUNNING = StateType.RUNNING
_COMPLETED = StateType.COMPLETED
_CANCELLED = StateType.CANCELLED


def name_from_template(
    template: str | Callable[[], str], parameters: dict[str, Any], option: str, owner: str
) -> str:
    """A run name from ``flow_run_name`` / ``task_run_name``: a template over the
    parameters (``"nightly-{day}"``) or a callable.

    Raises:
        ValueError: the template names something that is not a parameter.
        TypeError: the result is not a non-empty string.
    """
    if callable(template):
        name = template()
    else:
        try:
            name = template.format(**parameters)
        except (KeyError, IndexError) as error:
            raise ValueError(
                f"{option} {template!r} of {owner} refers to {error}, "
                f"which is not one of its parameters ({', '.join(parameters) or 'none'})"
            ) from None
    if not isinstance(name, str) or not name:
        raise TypeError(f"{option} of {owner} must give a non-empty string, got {name!r}")
    return name


def propose(store: RunStore | None, run: FlowRun | TaskRun, state: State) -> State:
    """Move ``run`` to ``state`` if the orchestration rules allow it, and record it."""
    check_transition(run.state.type if run.state is not None else None, state.type)
    if state.type is _RUNNING and run.start_time is None:
        run.start_time = state.timestamp
    if state.is_final():
        run.end_time = state.timestamp
    run.state = state
    if store is not None:
        store.set_state(run, state)
    return state


def retry_pause(
    *,
    policy: RetryPolicy,
    attempt: int,
    error: BaseException,
    condition: Callable[[BaseException], bool] | None,
    logger: RunLogger,
    store: RunStore | None,
    run: FlowRun | TaskRun,
) -> RunLoop[bool]:
    """Decide whether a failed attempt is retried; if so, log, record and wait."""
    try:
        again = should_retry(
            attempt=attempt, retries=policy.retries, error=error, condition=condition
        )
    except Exception:
        logger.exception("retry_condition_fn raised; not retrying")
        return False
    if not again:
        return False
    delay = retry_delay(attempt=attempt, delays=policy.delays, jitter_factor=policy.jitter_factor)
    logger.warning(
        "Attempt %d of %d failed with %s",
        attempt,
        policy.retries + 1,
        describe(error),
    )
    logger.info("Retrying in %.1f seconds...", delay)
    propose(store, run, AwaitingRetry(f"Retry {attempt} of {policy.retries}"))
    if delay > 0:
        yield Sleep(delay)
    return True


def failure_state(kind: str, error: BaseException) -> State:
    """The final state for an attempt that raised ``error``."""
    if isinstance(error, RunTimeoutError):
        return TimedOut(f"{kind} run exceeded timeout of {error.seconds:g} second(s)", data=error)
    if _is_cancellation(error):
        return Cancelled(f"{kind} run was cancelled", data=error)
    if not isinstance(error, Exception):
        return Crashed(f"{kind} run was interrupted by {type(error).__name__}", data=error)
    return Failed(f"{kind} run encountered an exception: {describe(error)}", data=error)


def _is_cancellation(error: BaseException) -> bool:
    # asyncio is only loaded by async code; without it there is no CancelledError to see.
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(error, asyncio.CancelledError)


def attempt_error(outcome: Outcome, label: str, policy: RetryPolicy) -> BaseException:
    """The error an attempt ended with (a timeout becomes ``RunTimeoutError``)."""
    assert outcome.error is not None
    if outcome.timed_out:
        assert policy.timeout_seconds is not None
        return RunTimeoutError(label, policy.timeout_seconds)
    return outcome.error


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_hooks(
    hooks: Sequence[Callable[..., Any]], args: tuple[Any, ...], logger: RunLogger
) -> RunLoop[None]:
    """Call each hook in turn; one that raises is logged and the rest still run."""
    for hook in hooks:
        outcome = yield Hook(hook, args)
        if outcome is not None and outcome.error is not None:
            name = getattr(hook, "__name__", repr(hook))
            logger.error(
                "Hook %r failed; the state is unchanged",
                name,
                exc_info=(type(outcome.error), outcome.error, outcome.error.__traceback__),
            )


def log_final(logger: RunLogger, state: State) -> None:
    if state.type is _COMPLETED:
        level = logging.INFO
    elif state.type is _CANCELLED:
        level = logging.WARNING
    else:
        level = logging.ERROR
    if logger.logger.isEnabledFor(level):
        logger.engine_event(level, f"Finished in state {state!r}")
