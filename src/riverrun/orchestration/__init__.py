"""Orchestration core: pure rules, no I/O.

Invariants:
- Nothing here imports the store, the database, the server or the network; every
  function takes what it needs (states, counts, a random source, the time) as arguments.
- The embedded store (local runs) and the server apply these same rules, so a run
  recorded locally and one recorded through the API can never disagree.
- Rules answer questions: is this transition legal, should this failure be retried and
  after how long. They never perform the transition themselves.
"""

from riverrun.orchestration.rules import (
    IllegalTransitionError,
    RetryDelaySeconds,
    RetryPolicy,
    check_transition,
    normalise_delays,
    retry_delay,
    should_retry,
)

__all__ = [
    "IllegalTransitionError",
    "RetryDelaySeconds",
    "RetryPolicy",
    "check_transition",
    "normalise_delays",
    "retry_delay",
    "should_retry",
]
