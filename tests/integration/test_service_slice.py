"""The vertical slice: init -> run -> a courier opens with a real ticket over HTTPS -> the
virtual Nuki lock unlocks through bleak/Bumble -> done -> relocked -> audit log."""

from __future__ import annotations

from gateway.ticket import Purpose

from ble.driver import LockState
from tests.support.service import GatewayHarness, harness

__all__ = ["harness"]


async def test_delivery_open_done_relock_and_audit(harness: GatewayHarness) -> None:
    assert harness.sim.lock.lock_state.name == "LOCKED"
    t = harness.ticket(purpose=Purpose.DELIVERY, package_codes=("PKG-77",))
    reply = await harness.open(t, package_code="PKG-77")
    assert reply.status == 201
    assert reply.body["state"] == "open"
    session_id = reply.body["session"]
    await harness.wait_lock(LockState.UNLOCKED)

    view = await harness.done(t, session_id)
    assert view["state"] == "closed"
    await harness.wait_lock(LockState.LOCKED)

    owner = harness.keys.owner
    events = (await harness.client.owner(owner, "GET", "/v1/owner/events?since=0&limit=100"))[
        "events"
    ]
    kinds = [e["kind"] for e in events if e["body"].get("session") == session_id]
    assert kinds == [
        "session.granted",
        "session.unlocking",
        "session.open",
        "session.relocking",
        "session.closed",
    ]
