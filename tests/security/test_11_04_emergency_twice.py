"""Issue 11, finding 4: a single-use emergency ticket opens twice across a store outage.

An emergency ticket opens even when the database cannot write; its single use was then held
in RAM only. The attack: fill the store (SQLite's page quota, as a full disk), use the
emergency ticket, restart the gateway, use it again: it opened. And when the store came back
without a restart, the visit's first steps were never written: the log showed it starting at
``session.relocking``. Now each batch the store refuses is kept in the outage journal
(fsynced, beside the database) and written into the store, whole and in order, before any
other grant. Against the real gateway over HTTPS with the virtual lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ble.driver import LockState
from gateway.clients.lan import ApiProblem, GatewayClient
from gateway.trust.ticket import Purpose
from store.db import Store
from store.errors import StoreError
from tests.support.service import (
    WAIT,
    GatewayHarness,
    Keys,
    make_gateway_dir,
    start_gateway,
)

WHOLE_VISIT = [
    "session.granted",
    "alarm.raised",
    "session.unlocking",
    "session.open",
    "session.relocking",
    "session.closed",
]


async def fill(store: Store) -> None:
    """Cap the database at its current size and fill what is left, down to the last byte a
    small entry could use: from here every write fails as ``storage_full``."""
    await store.set_page_limit(1)  # SQLite keeps the current size: no page may be added
    for pad in (2000, 500, 100, 10, 0):
        for _ in range(400):
            try:
                await store.append("test.filler", {"pad": "x" * pad})
            except StoreError:
                break


async def started(directory: Path, keys: Keys) -> GatewayHarness:
    gateway = await start_gateway(directory / "threshold.toml")
    client = GatewayClient(gateway.url, fingerprint=gateway.fingerprint, timeout_s=WAIT)
    return GatewayHarness(directory, keys, gateway, client)


async def stopped(h: GatewayHarness) -> None:
    await h.client.close()
    async with asyncio.timeout(WAIT):
        await h.gateway.stop()


@pytest.fixture
async def first_run(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    keys = Keys()
    await make_gateway_dir(tmp_path / "gw", keys)
    h = await started(tmp_path / "gw", keys)
    try:
        yield h
    finally:
        await stopped(h)


async def visit(h: GatewayHarness, session: str) -> list[dict[str, Any]]:
    assert h.gateway.service is not None
    events = await h.gateway.service.events(0, 100_000)
    return [e for e in events if e["body"].get("session") == session]


async def test_a_used_emergency_ticket_stays_used_across_a_restart(
    first_run: GatewayHarness,
) -> None:
    h = first_run
    assert h.gateway.store is not None
    await fill(h.gateway.store)
    emergency = h.ticket(purpose=Purpose.EMERGENCY, open_s=1)
    reply = await h.open(emergency)
    assert reply.status == 201
    session = reply.body["session"]
    await h.wait_session(session, "closed")  # relocked by its timer, all while full
    await stopped(h)

    # The restart: the page quota is gone with the connection, as after freeing the disk.
    h = await started(h.directory, h.keys)
    try:
        with pytest.raises(ApiProblem) as refused:
            await h.open(emergency)
        assert (refused.value.status, refused.value.code) == (403, "uses_exhausted")
        assert h.sim.lock.lock_state.name == "LOCKED"

        # The log tells the whole first visit, marked as written late, then says so.
        mine = await visit(h, session)
        assert [e["kind"] for e in mine[: len(WHOLE_VISIT)]] == WHOLE_VISIT
        assert all("journaled_ms" in e["body"] for e in mine[: len(WHOLE_VISIT)])
        assert h.gateway.service is not None
        events = await h.gateway.service.events(0, 100_000)
        replayed = [e for e in events if e["kind"] == "store.outage_replayed"]
        assert len(replayed) == 1
        assert replayed[0]["body"]["uses"] == 1
        assert replayed[0]["body"]["uses_over_limit"] == 0
        assert h.gateway.store is not None
        assert await h.gateway.store.unclosed_sessions() == []

        # And ordinary tickets are served.
        ordinary = h.ticket()
        assert (await h.open(ordinary, package_code="PKG-1")).status == 201
        await h.wait_lock(LockState.UNLOCKED)
    finally:
        await stopped(h)


async def test_the_store_recovering_means_the_whole_visit_is_written_and_service_recovers(
    first_run: GatewayHarness,
) -> None:
    h = first_run
    store = h.gateway.store
    assert store is not None
    await fill(store)
    emergency = h.ticket(purpose=Purpose.EMERGENCY, open_s=600)
    reply = await h.open(emergency)
    assert reply.status == 201
    session = reply.body["session"]
    await h.wait_lock(LockState.UNLOCKED)
    # While full, an ordinary ticket is refused (fail closed) ...
    with pytest.raises(ApiProblem) as refused:
        await h.open(h.ticket(), package_code="PKG-1")
    assert refused.value.code in ("storage_unavailable", "door_busy")

    # ... the disk is freed while the door is open, and the courier says done.
    await store.set_page_limit(1_000_000)
    await h.done(emergency, session)
    await h.wait_session(session, "closed")
    await h.wait_lock(LockState.LOCKED)

    # The log holds the whole visit in order, not one starting at session.relocking.
    mine = await visit(h, session)
    assert [e["kind"] for e in mine] == WHOLE_VISIT
    assert await store.unclosed_sessions() == []

    # Service recovered: an ordinary ticket opens, and the emergency ticket is used up.
    ordinary = h.ticket()
    reply = await h.open(ordinary, package_code="PKG-1")
    assert reply.status == 201
    await h.wait_lock(LockState.UNLOCKED)
    await h.done(ordinary, reply.body["session"])
    await h.wait_lock(LockState.LOCKED)
    with pytest.raises(ApiProblem) as again:
        await h.open(emergency)
    assert again.value.code == "uses_exhausted"


async def test_a_session_row_an_outage_left_open_does_not_lock_everyone_out(
    first_run: GatewayHarness,
) -> None:
    """The row the attack's small write left: a session that is over, still open in the
    store. Before, every ordinary ticket on that door got 503 until a restart."""
    h = first_run
    store = h.gateway.store
    assert store is not None

    def left_open(tx: Any) -> None:
        tx.state.open_session("s-left-open", "front", "open", tx.now_ms(), ticket_id="t-gone")

    await store.transact(left_open)
    await fill(store)
    with pytest.raises(ApiProblem) as refused:
        await h.open(h.ticket(), package_code="PKG-1")
    assert (refused.value.status, refused.value.code) == (503, "storage_unavailable")

    await store.set_page_limit(1_000_000)  # the disk is freed
    ordinary = h.ticket()
    reply = await h.open(ordinary, package_code="PKG-1")
    assert reply.status == 201
    await h.wait_lock(LockState.UNLOCKED)
    assert h.gateway.service is not None
    events = await h.gateway.service.events(0, 100_000)
    settled = [e for e in events if e["kind"] == "session.settled"]
    assert [(e["body"]["session"], e["body"]["was"]) for e in settled] == [("s-left-open", "open")]
