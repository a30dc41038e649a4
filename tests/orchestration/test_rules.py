"""The transition rules the engine and the server share."""

from __future__ import annotations

import pytest

from riverrun.orchestration import IllegalTransitionError, check_transition
from riverrun.states import FINAL_TYPES, StateType

S = StateType


@pytest.mark.parametrize("final", sorted(FINAL_TYPES))
def test_a_final_state_is_left_only_to_run_again_through_scheduled_or_pending(
    final: StateType,
) -> None:
    check_transition(final, S.SCHEDULED)
    check_transition(final, S.PENDING)
    with pytest.raises(IllegalTransitionError) as refused:
        check_transition(final, S.RUNNING)
    assert (refused.value.current, refused.value.proposed) == (final, S.RUNNING)
    assert str(refused.value) == f"Cannot move from {final.value} to RUNNING"


def test_an_ordinary_run_and_a_retry_are_legal() -> None:
    for current, proposed in [
        (None, S.PENDING),
        (S.PENDING, S.RUNNING),
        (S.RUNNING, S.SCHEDULED),  # awaiting retry
        (S.SCHEDULED, S.RUNNING),
        (S.RUNNING, S.COMPLETED),
    ]:
        check_transition(current, proposed)
