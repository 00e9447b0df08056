"""The time floor in the real store, through the access layer's ledger (issue 11, finding 1):
a raise is ruled on and written in one transaction, never past the local clock plus the
skew; the owner's reset is the one way down, recorded with its old and new values, and it
lasts across a reopen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.access.ledger import StoreLedger
from tests.support.store import new_signer, open_store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=120)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def kinds_and_bodies(ledger: StoreLedger) -> list[tuple[str, dict[str, object]]]:
    return [(e["kind"], e["body"]) for e in await ledger.events(0, 1000)]


async def test_raises_stop_at_local_plus_skew_and_the_owner_resets(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    signer = new_signer()
    store = await open_store(path, signer)
    try:
        ledger = StoreLedger(store, "gw-test")
        far = NOW + timedelta(days=3650)
        for _ in range(100):
            floor = await ledger.raise_time_floor(far, NOW, SKEW)
            assert floor == NOW + SKEW
        raised = [b for k, b in await kinds_and_bodies(ledger) if k == "clock.floor_raised"]
        assert raised == [{"floor_ms": ms(NOW + SKEW), "claimed_ms": ms(far), "local_ms": ms(NOW)}]
        # Not ahead of the clock: the reset changes and records nothing.
        later = NOW + timedelta(minutes=5)
        assert not (await ledger.reset_time_floor(later)).changed
        # A floor far ahead (an older rule's leftovers) is not raised further, and the reset
        # brings it back to the clock, on the record.
        await store.append("clock.floor_raised", {"floor_ms": ms(far)}, ms(far))
        assert await ledger.raise_time_floor(far + timedelta(days=1), later, SKEW) == far
        reset = await ledger.reset_time_floor(later)
        assert (reset.changed, reset.old_ms, reset.new_ms) == (True, ms(far), ms(later))
        assert await ledger.time_floor() == later
        last = (await kinds_and_bodies(ledger))[-1]
        assert last == ("clock.floor_reset", {"old_floor_ms": ms(far), "new_floor_ms": ms(later)})
    finally:
        await store.close()
    store = await open_store(path, signer)
    try:
        assert await StoreLedger(store, "gw-test").time_floor() == later
    finally:
        await store.close()
