"""The paced upload's pure schedule (gateway.sync.pacing, docs/privacy.md)."""

from __future__ import annotations

import pytest

from gateway.sync.pacing import PacingConfig, PacingError, UploadPacer, bytes_per_day

CONFIG = PacingConfig(interval_s=60.0, slots=4, jitter_s=3.0, queue_bound=40)


def test_every_slot_seals_off_exactly_its_entries_padding_the_rest() -> None:
    pacer = UploadPacer(CONFIG, boundary=10)
    quiet = pacer.plan(tree_size=11, due=1)  # one real entry waiting (the signed time)
    assert (quiet.boundary, quiet.padding, quiet.queued) == (14, 3, 0)
    pacer.closed(quiet)
    burst = pacer.plan(tree_size=14 + 11, due=1)  # a visit: eleven entries at once
    assert (burst.boundary, burst.padding, burst.queued) == (18, 0, 7)
    pacer.closed(burst)
    assert pacer.queue(25).queued == 7
    assert pacer.queue(25).delay_s == 2 * 60.0  # seven entries leave in the next two slots
    drained = pacer.plan(tree_size=25, due=2)
    assert (drained.boundary, drained.padding, drained.queued) == (26, 1, 0)


def test_the_first_slot_seals_off_the_history_before_pacing() -> None:
    pacer = UploadPacer(CONFIG, boundary=None)
    first = pacer.plan(tree_size=7, due=1)
    assert (first.boundary, first.padding) == (11, 4)
    assert pacer.queue(7).queued == 0


def test_slot_times_follow_the_grid_whatever_happens() -> None:
    pacer = UploadPacer(CONFIG, boundary=0)
    pacer.start(1000.0)
    assert pacer.next_at() == 1000.0
    assert pacer.take_due(1000.0, draw=0.5) == 1
    assert pacer.next_at() == 1060.0 + 1.5
    assert pacer.take_due(1061.5, draw=0.0) == 1
    assert pacer.next_at() == 1120.0
    # An exchange that came late closes one slot only; the next ones follow at once until
    # the exchanges are back on the grid, which never moves.
    assert pacer.take_due(1120.0 + 130.0, draw=0.9) == 1
    assert pacer.next_at() == 1250.0  # the slot due at 1180 is taken now
    assert pacer.take_due(1250.0, draw=0.9) == 1
    assert pacer.next_at() == 1250.0  # and the one due at 1240
    assert pacer.take_due(1250.0, draw=0.5) == 1
    assert pacer.next_at() == 1300.0 + 1.5  # back on the grid
    # The owner forcing a slot early takes the next one; the grid moves on by one interval.
    assert pacer.take_due(1280.0, draw=0.0) == 1
    assert pacer.next_at() == 1360.0
    # After a long gap (a suspended machine) the grid restarts from now.
    assert pacer.take_due(1360.0 + 3600.0, draw=0.0) == 1
    assert pacer.next_at() == 1360.0 + 3660.0


def test_queue_over_its_bound_is_reported_not_flushed() -> None:
    pacer = UploadPacer(CONFIG, boundary=0)
    plan = pacer.plan(tree_size=100, due=1)
    assert (plan.boundary, plan.padding, plan.queued) == (4, 0, 96)
    pacer.closed(plan)
    state = pacer.queue(100)
    assert state.over_bound
    assert state.delay_s == 24 * 60.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval_s": 0.0},
        {"slots": 0},
        {"slots": 501},
        {"jitter_s": 60.0},
        {"jitter_s": -1.0},
        {"queue_bound": 3},
    ],
)
def test_settings_out_of_range_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(PacingError):
        PacingConfig(**kwargs)  # type: ignore[arg-type]


def test_bytes_per_day_at_the_defaults() -> None:
    # 1,440 exchanges a day of four 576-byte leaves and about 2 kB of requests around them.
    assert bytes_per_day(PacingConfig(), leaf_bytes=576, exchange_overhead=2000) == 1440 * (
        4 * 576 + 2000
    )
