"""Retry-After and the bounded time floor (the backoff itself: tests/unit/test_backoff.py)."""

from __future__ import annotations

from gateway.sync.schedule import (
    MAX_RETRY_AFTER_S,
    raised_time_floor,
    retry_after_s,
)


def test_retry_after_forms() -> None:
    assert retry_after_s(None, 0) is None
    assert retry_after_s("7", 0) == 7.0
    assert retry_after_s("999999", 0) == MAX_RETRY_AFTER_S
    assert retry_after_s("Wed, 21 Oct 2015 07:28:10 GMT", 1445412480.0) == 10.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0) == 0.0
    assert retry_after_s("soon", 0) is None


def test_time_floor_rises_by_at_most_the_skew_and_never_falls() -> None:
    skew = 300_000
    assert raised_time_floor(1000, 2000, 5000, skew) == 5000
    assert raised_time_floor(1000, 2000, 10**12, skew) == 2000 + skew
    assert raised_time_floor(50_000, 2000, 10, skew) == 50_000
    assert raised_time_floor(10**9, 0, 10**9 + 10**8, skew) == 10**9 + skew
