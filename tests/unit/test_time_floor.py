"""The time-floor rule (gateway/trust/clock.py): how far outside signed time may move the
floor, when a floor is implausibly far ahead, and the times an emergency is judged at
(issue 11, finding 1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.trust.clock import (
    clock_trusted,
    floor_ahead,
    plausible_times,
    raised_floor_ms,
)

SKEW_MS = 120_000
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=120)


def test_signed_time_raises_the_floor_up_to_the_local_clock_plus_the_skew() -> None:
    local = 10_000_000
    assert raised_floor_ms(0, local, local + 5_000, SKEW_MS) == local + 5_000
    assert raised_floor_ms(0, local, local + 10**12, SKEW_MS) == local + SKEW_MS
    # Behind the floor: nothing moves, and nothing is ever lowered.
    assert raised_floor_ms(local, local, local - 60_000, SKEW_MS) == local


def test_a_floor_already_ahead_is_never_raised_further() -> None:
    # The old rule's ceiling was max(floor, local) + skew: once the floor was ahead, each
    # round added another skew. Now the ceiling is the local clock's alone.
    local = 10_000_000
    ahead = local + 6_540_000  # 109 minutes ahead, as the attack left it
    assert raised_floor_ms(ahead, local, local + 10**12, SKEW_MS) == ahead


def test_many_rounds_of_a_lying_relay_end_at_local_plus_skew() -> None:
    local, floor = 10_000_000, 0
    for _ in range(10_000):
        floor = raised_floor_ms(floor, local, local + 10**12, SKEW_MS)
    assert floor == local + SKEW_MS
    # ... and the local clock is still trusted against that floor.
    now = datetime.fromtimestamp(local / 1000, UTC)
    assert clock_trusted(now, datetime.fromtimestamp(floor / 1000, UTC), SKEW)


@given(
    floor=st.integers(0, 2**50),
    local=st.integers(0, 2**50),
    claims=st.lists(st.integers(0, 2**52), max_size=50),
)
def test_the_floor_never_passes_local_plus_skew_whatever_is_claimed(
    floor: int, local: int, claims: list[int]
) -> None:
    start = floor
    for claimed in claims:
        new = raised_floor_ms(floor, local, claimed, SKEW_MS)
        assert new >= floor  # never lowered
        assert new <= max(start, local + SKEW_MS)  # never raised past local + skew
        floor = new


def test_a_floor_more_than_the_skew_ahead_is_reported() -> None:
    assert floor_ahead(None, NOW, SKEW) is None
    assert floor_ahead(NOW + SKEW, NOW, SKEW) is None
    assert floor_ahead(NOW - timedelta(days=1), NOW, SKEW) is None
    assert floor_ahead(NOW + timedelta(minutes=109), NOW, SKEW) == timedelta(minutes=109)


def test_an_untrusted_clock_is_judged_at_both_times() -> None:
    assert plausible_times(NOW, None, SKEW) == (NOW,)
    assert plausible_times(NOW, NOW + SKEW, SKEW) == (NOW,)
    far = NOW + timedelta(hours=2)
    assert plausible_times(NOW, far, SKEW) == (NOW, far)
