"""Retry-After and the retry interval's floor (the backoff itself: tests/unit/test_backoff.py;
how far the relay's time moves the floor: tests/unit/test_time_floor.py)."""

from __future__ import annotations

from gateway.sync.schedule import (
    BACKOFF_CAP_S,
    MAX_RETRY_AFTER_S,
    MIN_RETRY_S,
    retry_after_s,
    retry_delay,
)


def test_retry_after_forms() -> None:
    assert retry_after_s(None, 0) is None
    assert retry_after_s("7", 0) == 7.0
    assert retry_after_s("999999", 0) == MAX_RETRY_AFTER_S
    assert retry_after_s("Wed, 21 Oct 2015 07:28:10 GMT", 1445412480.0) == 10.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0) == 0.0
    assert retry_after_s("soon", 0) is None
    assert retry_after_s("\u00b9\u00b2", 0) is None  # digits to isdigit(), not to float()


def test_a_failed_round_is_never_retried_sooner_than_the_minimum() -> None:
    # Full jitter may draw nothing at all; a relay answering 503 without Retry-After, round
    # after round, still cannot bring the gateway back sooner than the minimum.
    for failures in range(1, 40):
        for draw in (0.0, 0.001, 0.5):
            delay = retry_delay(
                failures, None, cap_s=BACKOFF_CAP_S, minimum_s=MIN_RETRY_S, jitter=lambda d=draw: d
            )
            assert delay >= MIN_RETRY_S
    # A Retry-After of 0 (or 1 s) does not shorten it either; a longer one lengthens it.
    assert retry_delay(1, 0.0, cap_s=300, minimum_s=MIN_RETRY_S, jitter=lambda: 0.0) == MIN_RETRY_S
    assert retry_delay(1, 120.0, cap_s=300, minimum_s=MIN_RETRY_S, jitter=lambda: 0.0) == 120.0
    # Past the minimum, the jittered doubling backoff decides, up to its cap.
    assert retry_delay(10, None, cap_s=300, minimum_s=MIN_RETRY_S, jitter=lambda: 0.999) > 290
    assert MIN_RETRY_S >= 10.0
