"""The relay's request budget: buckets per address and overall, and a bounded table whose
eviction never hands a limited address a fresh burst."""

from __future__ import annotations

import random

import pytest

from cloud.ratelimit import BucketTable, Rate, RequestBudget

SLOW = Rate(per_minute=1, burst=3)


def test_a_bucket_spends_its_burst_then_waits_for_the_refill() -> None:
    table = BucketTable(SLOW, max_keys=10)
    assert [table.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert table.take("a", 0.0) == pytest.approx(60.0)
    assert table.take("a", 30.0) == pytest.approx(30.0)
    assert table.take("a", 60.0) == 0.0


def test_junk_keys_cannot_push_a_limited_key_out_of_the_table() -> None:
    # The attack of issue 11, finding 11: exhaust a key, then send more junk keys than the
    # table holds, so that an LRU table forgets the exhausted key and it starts afresh.
    table = BucketTable(SLOW, max_keys=100)
    for _ in range(3):
        table.take("victim", 0.0)
    for n in range(10_350):
        table.take(f"junk-{n}", 1.0 + n / 1_000_000)
    assert table.take("victim", 2.0) > 0.0
    assert len(table) <= 100


def test_keys_the_table_cannot_hold_share_one_overflow_bucket() -> None:
    table = BucketTable(SLOW, max_keys=2)
    table.take("a", 0.0)
    table.take("b", 0.0)
    assert [table.take(f"new-{n}", 0.0) for n in range(4)] == [0.0, 0.0, 0.0, pytest.approx(60.0)]
    assert len(table) == 2


def test_a_bucket_that_has_refilled_makes_room_as_a_new_one_would() -> None:
    table = BucketTable(SLOW, max_keys=2)
    table.take("old", 0.0)
    table.take("recent", 100.0)
    # "old" is full again by now: dropping it refunds nothing, so the newcomer gets its slot.
    assert table.take("newcomer", 200.0) == 0.0
    assert [table.take("newcomer", 200.0) for _ in range(2)] == [0.0, 0.0]
    assert table.take("newcomer", 200.0) > 0.0


def test_no_sequence_of_other_keys_refunds_an_exhausted_key() -> None:
    rng = random.Random(11)
    for _ in range(200):
        table = BucketTable(SLOW, max_keys=rng.randint(1, 8))
        now = 0.0
        while table.take("victim", now) == 0.0:
            pass
        for _ in range(rng.randint(0, 60)):
            now += rng.random() * 0.5  # 30 s in all at most: never a whole token back
            table.take(f"k{rng.randint(0, 40)}", now)
        assert table.take("victim", now) > 0.0


def test_the_global_budget_counts_only_requests_their_address_allowed() -> None:
    budget = RequestBudget(Rate(per_minute=1, burst=1), Rate(per_minute=1, burst=3))
    assert budget.take("noisy", 0.0) == 0.0
    assert all(budget.take("noisy", 0.0) > 0.0 for _ in range(50))
    assert [budget.take(name, 0.0) for name in ("b", "c")] == [0.0, 0.0]
    assert budget.take("d", 0.0) > 0.0


def test_a_rate_must_refill_and_hold_a_token() -> None:
    with pytest.raises(ValueError, match="positive"):
        Rate(per_minute=0, burst=1)
    with pytest.raises(ValueError, match="positive"):
        Rate(per_minute=1, burst=0)
