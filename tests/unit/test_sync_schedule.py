"""Backoff with full jitter, Retry-After, and the bounded time floor."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sync.schedule import (
    MAX_RETRY_AFTER_S,
    backoff_delay,
    raised_time_floor,
    retry_after_s,
)


@given(st.integers(0, 500), st.floats(0, 1, exclude_max=True))
def test_backoff_is_full_jitter_under_a_cap(attempt: int, r: float) -> None:
    delay = backoff_delay(attempt, base_s=1.0, cap_s=300.0, rand=lambda: r)
    assert 0 <= delay <= min(300.0, 2.0**attempt)
    assert delay == r * min(300.0, 2.0 ** min(attempt, 62))


def test_backoff_grows_then_caps() -> None:
    top = [backoff_delay(a, rand=lambda: 0.999999) for a in range(12)]
    assert top[0] < top[3] < top[8]
    assert top[11] < 300.0
    assert top[10] == top[11]


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
