"""The slot rules, with the time passed in."""

from __future__ import annotations

import pytest

from riverrun.orchestration.concurrency import (
    FIRST_POLL_SECONDS,
    MAX_POLL_SECONDS,
    LimitUsage,
    Verdict,
    bucket_level,
    check_request,
    decide,
    next_poll,
    rate_empty_at_after,
    renew_interval,
    validate_decay,
    validate_limit,
    validate_name,
    validate_occupy,
)


def usage(
    limit: int = 3, held: int = 0, decay: float = 0.0, empty_at: float | None = None
) -> LimitUsage:
    return LimitUsage("x", limit, decay, held, empty_at)


def test_held_slots_are_capped_and_wait_for_a_release() -> None:
    assert decide([usage(held=2)], 1, first_in_line=True, now=0) == Verdict(True)
    assert decide([usage(held=3)], 1, first_in_line=True, now=0) == Verdict(False, None)
    assert decide([usage(held=1)], 3, first_in_line=True, now=0) == Verdict(False, None)


def test_a_waiter_ahead_keeps_a_free_slot_from_a_newcomer() -> None:
    assert decide([usage()], 1, first_in_line=False, now=0) == Verdict(False, None)


def test_every_limit_of_a_request_must_fit() -> None:
    assert not decide([usage(), usage(held=3)], 1, first_in_line=True, now=0).granted


def test_a_limit_of_zero_waits_instead_of_refusing() -> None:
    check_request(usage(limit=0), 5, hold=True)
    assert decide([usage(limit=0)], 1, first_in_line=True, now=0) == Verdict(False, None)


def test_the_bucket_decays_and_tells_when_the_next_slot_frees() -> None:
    bucket = usage(limit=2, decay=4.0, empty_at=10.5)  # 2 rate slots at t=10
    assert bucket_level(bucket, 10.0) == pytest.approx(2.0)
    assert bucket_level(bucket, 11.0) == 0.0
    verdict = decide([bucket], 1, first_in_line=True, now=10.0)
    assert not verdict.granted and verdict.retry_after == pytest.approx(0.25)
    assert decide([bucket], 1, first_in_line=True, now=10.25).granted
    # Held slots count against the same limit.
    assert decide(
        [usage(limit=2, held=1, decay=4.0, empty_at=10.5)], 1, first_in_line=True, now=10.0
    ).retry_after == pytest.approx(0.5)


def test_taking_rate_slots_pushes_the_empty_time() -> None:
    assert rate_empty_at_after(usage(decay=10.0), 1, now=5.0) == pytest.approx(5.1)
    assert rate_empty_at_after(usage(decay=10.0, empty_at=5.3), 2, 5.0) == pytest.approx(5.5)
    assert rate_empty_at_after(usage(decay=10.0, empty_at=1.0), 1, 5.0) == pytest.approx(5.1)


def test_impossible_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot occupy 4 slots"):
        check_request(usage(limit=3), 4, hold=True)
    with pytest.raises(ValueError, match="no slot decay"):
        check_request(usage(), 1, hold=False)


def test_polling_backs_off_to_a_cap_and_leases_renew_three_times() -> None:
    pauses = [next_poll(None)]
    for _ in range(6):
        pauses.append(next_poll(pauses[-1]))
    assert pauses[0] == FIRST_POLL_SECONDS and pauses[-1] == MAX_POLL_SECONDS
    assert pauses == sorted(pauses)
    assert renew_interval(30.0) == 10.0


@pytest.mark.parametrize("bad", ["", " x", "a\tb", 5, None])
def test_bad_names_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="name"):
        validate_name(bad)


def test_numbers_are_validated() -> None:
    assert validate_limit(0) == 0 and validate_occupy(2) == 2 and validate_decay(1) == 1.0
    for call, bad in (
        (validate_limit, -1),
        (validate_limit, True),
        (validate_occupy, 0),
        (validate_decay, float("nan")),
        (validate_decay, "1"),
    ):
        with pytest.raises(ValueError):
            call(bad)
