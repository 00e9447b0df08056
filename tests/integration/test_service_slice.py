"""The vertical slice: init -> run -> a courier opens with a real ticket over HTTPS -> the
virtual Nuki lock unlocks through bleak/Bumble -> done -> relocked -> audit log."""

from __future__ import annotations

import base64
from typing import Any

from ble.driver import LockState
from gateway.trust.base64url import b64u_decode
from gateway.trust.ticket import Purpose
from store import merkle
from store.checkpoint import SignedCheckpoint
from tests.support.phone_receipt import check_visit_receipt
from tests.support.service import GATEWAY_ID, GatewayHarness, harness

__all__ = ["harness"]


def assert_receipt_verifies(receipt: dict[str, Any], gateway_public_key: str) -> None:
    """What the courier's phone can check offline: the gateway signed a checkpoint whose tree
    includes the entry closing the visit."""
    assert receipt["kind"] == "session.closed"
    cp = receipt["checkpoint"]
    signed = SignedCheckpoint.from_note(cp["note"])
    assert signed.checkpoint.tree_size == cp["tree_size"]
    assert signed.checkpoint.root_hash == base64.b64decode(cp["root_hash"])
    assert signed.verify(b64u_decode(gateway_public_key))
    assert merkle.verify_inclusion(
        merkle.leaf_hash(base64.b64decode(receipt["leaf_bytes"])),
        receipt["index"],
        cp["tree_size"],
        [base64.b64decode(p) for p in receipt["inclusion_proof"]],
        base64.b64decode(cp["root_hash"]),
    )


async def test_delivery_open_done_relock_and_audit(harness: GatewayHarness) -> None:
    assert harness.sim.lock.lock_state.name == "LOCKED"
    t = harness.ticket(purpose=Purpose.DELIVERY, package_codes=("PKG-77",))
    reply = await harness.open(t, package_code="PKG-77")
    assert reply.status == 201
    assert reply.body["state"] == "open"
    session_id = reply.body["session"]
    await harness.wait_lock(LockState.UNLOCKED)

    proof = harness.client.last_open_proof
    assert proof is not None
    view = await harness.done(t, session_id)
    assert view["state"] == "closed"
    await harness.wait_lock(LockState.LOCKED)
    assert_receipt_verifies(view["receipt"], harness.gateway.public_key)
    # The visitor's own check (docs/api.md, "Receipts"): the gateway key and its proof only.
    key = b64u_decode(harness.gateway.public_key)
    assert check_visit_receipt(view["receipt"], key, proof, GATEWAY_ID) is None
    assert check_visit_receipt(view["receipt"], key, bytes(64), GATEWAY_ID) == "visit_tag"

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
