"""Issue 11, finding 6: an approval opens a session whose ticket went bad while it waited.

The attack as reproduced: a surveyor's ticket needs the owner's approval, so the session
waits. Meanwhile the owner revokes the surveyor (or the ticket expires, or the camera the
ticket requires goes dark). The owner, on the phone, taps "approve" on the notification that
was already there, and ``approve()`` opened the door: it re-checked nothing. An approval now
re-runs every check that can have changed; a session that no longer passes is denied as
``approval_voided`` (409), on the record, and the lock is never moved.

Against the real gateway over HTTPS with the virtual Nuki lock (bleak over Bumble); the camera
case films Debian's GStreamer RTSP server and freezes it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ble.nuki.frames import Command
from ble.nuki.messages import LockAction
from gateway.access.errors import AccessCode, AccessRefused
from gateway.clients.lan import ApiProblem
from gateway.trust.approval import Approval, Decision, sign_approval
from gateway.trust.revocation import sign_revocations
from gateway.trust.ticket import Camera, Purpose
from tests.support.rtsp import RtspTestServer, rtsp_server, rtsp_server_factory, until
from tests.support.service import (
    GATEWAY_ID,
    WAIT,
    GatewayHarness,
    IssuedTicket,
    harness,
    running_harness,
    secret64,
)
from tests.support.tickets import revocation_list

__all__ = ["harness", "rtsp_server", "rtsp_server_factory"]  # fixtures


def unlocks(h: GatewayHarness) -> int:
    return h.sim.lock.count(Command.LOCK_ACTION, LockAction.UNLOCK)


async def waiting_session(h: GatewayHarness, t: IssuedTicket) -> str:
    reply = await h.open(t)
    assert (reply.status, reply.body["state"]) == (202, "awaiting_approval")
    return str(reply.body["session"])


async def approve(h: GatewayHarness, t: IssuedTicket, session: str) -> ApiProblem:
    """The owner approves: the attack succeeds if this answers with an open session."""
    now = datetime.now(UTC)
    approval = sign_approval(
        Approval(GATEWAY_ID, session, t.jti, Decision.APPROVE, now, now + timedelta(minutes=5)),
        secret64(h.keys.owner),
    )
    try:
        opened = await h.client.owner(
            h.keys.owner, "POST", "/v1/owner/approvals", {"approval": approval}
        )
    except ApiProblem as problem:
        return problem
    pytest.fail(f"the approval opened the door: {opened}")


async def assert_voided(h: GatewayHarness, problem: ApiProblem, session: str, cause: str) -> None:
    assert (problem.status, problem.code) == (409, "approval_voided"), problem
    assert cause in problem.detail
    view = await h.client.session(session)
    assert (view["state"], view["reason"]) == ("denied", "approval_voided")
    assert unlocks(h) == 0
    # Closed on the record: the denial names the check that failed.
    reply = await h.client.owner(h.keys.owner, "GET", "/v1/owner/events?limit=1000")
    mine = [e for e in reply["events"] if e["body"].get("session") == session]
    kinds = [e["kind"] for e in mine]
    assert kinds == ["session.awaiting_approval", "session.denied"], kinds
    denied = mine[-1]["body"]
    assert (denied["code"], denied["cause"]) == ("approval_voided", cause), denied
    # The door is free again: the session no longer holds it.
    assert h.gateway.service is not None
    assert h.gateway.service.door_states()["front"] is None


async def test_an_approval_after_the_holder_was_revoked_does_not_open(
    harness: GatewayHarness,
) -> None:
    h = harness
    t = h.ticket(purpose=Purpose.SURVEY, subject="surveyor", uses=3)
    session = await waiting_session(h, t)

    now = datetime.now(UTC).replace(microsecond=0)
    revoked = revocation_list(
        1, aud=(GATEWAY_ID,), iat=now, until=now + timedelta(days=1), sub=("surveyor",)
    )
    await h.client.owner(
        h.keys.owner,
        "POST",
        "/v1/owner/revocations",
        {"revocations": sign_revocations(revoked, secret64(h.keys.owner))},
    )

    await assert_voided(h, await approve(h, t, session), session, "revoked")


async def test_an_approval_after_the_ticket_expired_does_not_open(
    harness: GatewayHarness,
) -> None:
    h = harness
    assert h.gateway.service is not None
    skew = h.gateway.service.settings.skew
    # A ticket still valid at the request (within the clock skew past its expiry) for a few
    # seconds more: it expires while the session waits.
    now = datetime.now(UTC)
    dies_at = now + timedelta(seconds=6)
    t = h.ticket(
        purpose=Purpose.SURVEY,
        nbf=now - timedelta(hours=1),
        lifetime=(dies_at - skew) - (now - timedelta(hours=1)),
    )
    session = await waiting_session(h, t)
    # The wall clock passing the ticket's end is the event itself.
    await asyncio.sleep(max(0.0, (dies_at - datetime.now(UTC)).total_seconds()) + 0.2)

    await assert_voided(h, await approve(h, t, session), session, "expired")


def camera_settings(url: str) -> dict[tuple[str, str], str]:
    return {("camera", "url"): json.dumps(url), ("camera", "read_timeout_s"): "1.0"}


async def test_an_approval_after_the_required_camera_froze_does_not_open(
    tmp_path: Path, rtsp_server: RtspTestServer
) -> None:
    settings = camera_settings(rtsp_server.url)
    async with running_harness(tmp_path / "gw", settings=settings, allow_without_camera=False) as h:
        assert h.gateway.camera is not None
        camera = h.gateway.camera.camera
        assert await camera.wait_live(WAIT), "the test camera never went live"
        source = camera.source
        await until(source, lambda: source.ring_stats().span_s >= 0.5, WAIT)
        t = h.ticket(purpose=Purpose.SURVEY, camera=Camera.REQUIRED)
        session = await waiting_session(h, t)

        rtsp_server.freeze()
        try:
            await asyncio.wait_for(camera.stalled.wait(), WAIT)
            assert not camera.live
            problem: Any = await approve(h, t, session)
            await assert_voided(h, problem, session, "camera_unavailable")
        finally:
            rtsp_server.thaw()


async def test_an_approval_with_nothing_changed_still_opens(harness: GatewayHarness) -> None:
    """The control: the same flow, nothing changed while waiting, opens (the re-check is not
    a blanket refusal)."""
    h = harness
    t = h.ticket(purpose=Purpose.SURVEY, subject="surveyor")
    session = await waiting_session(h, t)
    now = datetime.now(UTC)
    approval = sign_approval(
        Approval(GATEWAY_ID, session, t.jti, Decision.APPROVE, now, now + timedelta(minutes=5)),
        secret64(h.keys.owner),
    )
    view = await h.client.owner(h.keys.owner, "POST", "/v1/owner/approvals", {"approval": approval})
    assert view["state"] == "open"
    assert unlocks(h) == 1
    await h.done(t, session)


async def test_an_approval_from_the_owner_app_after_the_revocation_does_not_open(
    harness: GatewayHarness,
) -> None:
    """The owner app's passkey path (``AccessService.decide``) re-checks like the signed one:
    the app's approve button on a stale notice cannot open for a revoked holder."""
    h = harness
    service = h.gateway.service
    assert service is not None
    t = h.ticket(purpose=Purpose.SURVEY, subject="surveyor", uses=3)
    session = await waiting_session(h, t)
    now = datetime.now(UTC).replace(microsecond=0)
    revoked = revocation_list(
        1, aud=(GATEWAY_ID,), iat=now, until=now + timedelta(days=1), sub=("surveyor",)
    )
    await h.client.owner(
        h.keys.owner,
        "POST",
        "/v1/owner/revocations",
        {"revocations": sign_revocations(revoked, secret64(h.keys.owner))},
    )

    with pytest.raises(AccessRefused) as refused:
        await service.decide(session, True, by="device d-000000000001")
    assert refused.value.code is AccessCode.APPROVAL_VOIDED, refused.value
    view = await h.client.session(session)
    assert (view["state"], view["reason"]) == ("denied", "approval_voided")
    assert unlocks(h) == 0


async def test_two_devices_approving_at_once_open_the_door_once(harness: GatewayHarness) -> None:
    """Two owner devices tap "approve" on the same notice together: the re-check reads the
    store (an await), so both could pass the state check; one opens, the other is told the
    session is no longer waiting, never a protocol error."""
    h = harness
    service = h.gateway.service
    assert service is not None
    t = h.ticket(purpose=Purpose.SURVEY, subject="surveyor", uses=3)
    session = await waiting_session(h, t)

    results = await asyncio.gather(
        service.decide(session, True, by="device d-000000000001"),
        service.decide(session, True, by="device d-000000000002"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1, results
    assert isinstance(refused[0], AccessRefused), refused
    assert refused[0].code is AccessCode.NOT_AWAITING_APPROVAL
    await h.wait_session(session, "open", WAIT)
    assert unlocks(h) == 1
