"""The one backoff (groundwork.backoff): doubling up to a cap, with or without full jitter,
and an explicit list of steps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sync.schedule import BACKOFF_BASE_S, BACKOFF_CAP_S
from groundwork.backoff import doubling_delay, stepped_delay


def test_doubling_starts_at_initial_and_stops_at_the_cap() -> None:
    # The relock retry's and the supervisor's schedule with their defaults (1 s, 30 s).
    assert [doubling_delay(n, 1.0, 30.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert doubling_delay(10_000, 1.0, 30.0) == 30.0  # no overflow far past the cap
    assert doubling_delay(3, 0.25, 60.0) == 1.0


@given(st.integers(1, 500), st.floats(0, 1, exclude_max=True))
def test_full_jitter_is_uniform_below_the_ceiling(failures: int, r: float) -> None:
    ceiling = doubling_delay(failures, BACKOFF_BASE_S, BACKOFF_CAP_S)
    delay = doubling_delay(failures, BACKOFF_BASE_S, BACKOFF_CAP_S, jitter=lambda: r)
    assert delay == r * ceiling
    assert 0 <= delay <= min(BACKOFF_CAP_S, 2.0 ** (failures - 1))


def test_steps_repeat_the_last_one() -> None:
    assert [stepped_delay(n, (1.0, 5.0, 60.0)) for n in range(1, 6)] == [1, 5, 60, 60, 60]


@pytest.mark.parametrize("failures", [0, -1])
def test_failures_count_from_one(failures: int) -> None:
    with pytest.raises(ValueError, match="from 1"):
        doubling_delay(failures, 1.0, 30.0)
    with pytest.raises(ValueError, match="from 1"):
        stepped_delay(failures, (1.0,))


def test_an_empty_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        stepped_delay(1, ())
