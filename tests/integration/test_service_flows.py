"""Every access flow and every problem code the API can answer, end to end: real HTTPS on
loopback, the real ticket code, the real store, the virtual Nuki lock through bleak/Bumble."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from ble.driver import LockState
from ble.nuki.frames import Command
from ble.nuki.messages import LockAction
from gateway.clients.lan import ApiProblem
from gateway.trust.approval import Approval, Decision, sign_approval
from gateway.trust.base64url import b64u_encode
from gateway.trust.certificate import IssuerCertificate, sign_certificate
from gateway.trust.revocation import sign_revocations
from gateway.trust.schedule import WeeklyWindow
from gateway.trust.ticket import Camera, Purpose
from tests.support.service import (
    GATEWAY_ID,
    WAIT,
    GatewayHarness,
    IssuedTicket,
    harness,
    make_ticket,
    running_harness,
    secret64,
)
from tests.support.tickets import revocation_list

__all__ = ["harness"]


async def refused(harness: GatewayHarness, t: Any, **kw: Any) -> ApiProblem:
    with pytest.raises(ApiProblem) as info:
        await harness.open(t, **kw)
    return info.value


def unlocks(harness: GatewayHarness) -> int:
    return harness.sim.lock.count(Command.LOCK_ACTION, LockAction.UNLOCK)


# -- flows ------------------------------------------------------------------------------------


async def test_replay_of_a_used_ticket_is_refused(harness: GatewayHarness) -> None:
    t = harness.ticket(package_codes=("A",))
    first = await harness.open(t, package_code="A")
    await harness.done(t, first.body["session"])
    problem = await refused(harness, t, package_code="A")
    assert (problem.status, problem.code) == (403, "uses_exhausted")
    assert unlocks(harness) == 1


async def test_ticket_for_another_gateway(harness: GatewayHarness) -> None:
    t = make_ticket(harness.keys.owner, gateway_id="gw-elsewhere")
    problem = await refused(harness, t, package_code="PKG-1")
    assert problem.code == "wrong_gateway"
    assert unlocks(harness) == 0


async def test_cleaner_inside_and_outside_schedule(harness: GatewayHarness) -> None:
    now = datetime.now(UTC)
    minute = now.hour * 60 + now.minute
    today = frozenset({now.weekday()})
    inside = WeeklyWindow(today, max(0, minute - 30), min(1440, minute + 30))
    later = (minute + 120) % 1440
    outside = WeeklyWindow(today, later, (later + 30) % 1440 or 1440)
    ok = harness.ticket(purpose=Purpose.SERVICE, schedule=(inside,), subject="cleaner", uses=5)
    reply = await harness.open(ok)
    assert reply.status == 201
    await harness.done(ok, reply.body["session"])
    no = harness.ticket(purpose=Purpose.SERVICE, schedule=(outside,), subject="cleaner")
    assert (await refused(harness, no)).code == "outside_schedule"


async def test_survey_waits_then_owner_approves(harness: GatewayHarness) -> None:
    t = harness.ticket(purpose=Purpose.SURVEY, subject="surveyor")
    reply = await harness.open(t)
    assert reply.status == 202
    assert reply.body["state"] == "awaiting_approval"
    session_id = reply.body["session"]
    assert unlocks(harness) == 0
    now = datetime.now(UTC)
    approval = sign_approval(
        Approval(GATEWAY_ID, session_id, t.jti, Decision.APPROVE, now, now + timedelta(minutes=5)),
        secret64(harness.keys.owner),
    )
    view = await harness.client.owner(
        harness.keys.owner, "POST", "/v1/owner/approvals", {"approval": approval}
    )
    assert view["state"] == "open"
    await harness.wait_lock(LockState.UNLOCKED)
    assert (await harness.done(t, session_id))["state"] == "closed"


async def test_survey_refused_by_owner_and_by_timeout(tmp_path: Path) -> None:
    settings = {("policy", "approval_timeout_s"): "0.5"}
    async with running_harness(tmp_path / "gw", settings=settings) as h:
        t = h.ticket(purpose=Purpose.SURVEY)
        session_id = (await h.open(t)).body["session"]
        now = datetime.now(UTC)
        no = sign_approval(
            Approval(GATEWAY_ID, session_id, t.jti, Decision.DENY, now, now + timedelta(minutes=1)),
            secret64(h.keys.owner),
        )
        view = await h.client.owner(h.keys.owner, "POST", "/v1/owner/approvals", {"approval": no})
        assert (view["state"], view["reason"]) == ("denied", "approval_denied")

        t2 = h.ticket(purpose=Purpose.SURVEY)
        session_id = (await h.open(t2)).body["session"]
        await h.wait_session(session_id, "denied")
        assert (await h.client.session(session_id))["reason"] == "approval_denied"
        assert unlocks(h) == 0


async def test_emergency_opens_once_with_an_alarm(harness: GatewayHarness) -> None:
    t = harness.ticket(purpose=Purpose.EMERGENCY, uses=5, camera=Camera.REQUIRED)
    reply = await harness.open(t)
    await harness.done(t, reply.body["session"])
    assert (await refused(harness, t)).code == "uses_exhausted"
    events = (await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/events"))["events"]
    assert any(
        e["kind"] == "alarm.raised" and e["body"]["reason"].startswith("emergency") for e in events
    )


# -- problem codes ----------------------------------------------------------------------------


async def test_ticket_reason_codes(harness: GatewayHarness) -> None:
    owner = harness.keys.owner
    now = datetime.now(UTC)
    t = make_ticket(owner)
    payload, *footer = t.token.split(".")[2:]
    # Flip one character inside the signature (the payload's tail), keeping base64url canonical.
    flipped = payload[:-10] + ("A" if payload[-10] != "A" else "B") + payload[-9:]
    tampered = ".".join(["v4", "public", flipped, *footer])
    codes: dict[str, IssuedTicket] = {
        "bad_token": IssuedTicket("v4.public.garbage", "t-x", SigningKey.generate(), "front"),
        "bad_signature": IssuedTicket(tampered, t.jti, t.holder, "front"),
        "unknown_key": make_ticket(SigningKey.generate()),
        "wrong_door": make_ticket(owner, door="back"),
        "not_yet_valid": make_ticket(owner, nbf=now + timedelta(hours=1)),
        "expired": make_ticket(owner, nbf=now - timedelta(hours=3), lifetime=timedelta(hours=1)),
    }
    seen = {
        code: (await refused(harness, ticket, package_code="PKG-1")).code
        for code, ticket in codes.items()
    }
    assert seen == {code: code for code in codes}
    assert unlocks(harness) == 0


async def test_certificate_exceeded_and_revoked(harness: GatewayHarness) -> None:
    owner = harness.keys.owner
    issuer = SigningKey.generate()
    now = datetime.now(UTC)
    cert = sign_certificate(
        IssuerCertificate(
            sub="parcels-inc",
            key=bytes(issuer.verify_key),
            aud=GATEWAY_ID,
            jti="c-1",
            iat=now - timedelta(hours=1),
            nbf=now - timedelta(hours=1),
            exp=now + timedelta(days=30),
            purposes=(Purpose.SERVICE,),
        ),
        secret64(owner),
    )
    t = make_ticket(owner, issuer=issuer, issuer_name="parcels-inc", certificate=cert)
    assert (await refused(harness, t, package_code="PKG-1")).code == "certificate_exceeded"

    victim = make_ticket(owner)
    until = now + timedelta(days=1)
    rl = sign_revocations(
        revocation_list(1, aud=(GATEWAY_ID,), iat=now, until=until, jti=(victim.jti,)),
        secret64(owner),
    )
    problem = await refused(harness, victim, package_code="PKG-1", revocations=rl)
    assert problem.code == "revoked"
    elsewhere = sign_revocations(
        revocation_list(2, aud=("gw-cabin",), iat=now, until=until), secret64(owner)
    )
    reply = await harness.client.request(
        "POST",
        "/v1/owner/revocations",
        headers=await harness.client.owner_headers(
            owner, "POST", "/v1/owner/revocations", json.dumps({"revocations": elsewhere}).encode()
        ),
        raw=json.dumps({"revocations": elsewhere}).encode(),
    )
    assert reply.status == 400
    assert reply.body["code"] == "wrong_gateway"


async def test_proof_codes(harness: GatewayHarness) -> None:
    t = harness.ticket()
    client = harness.client
    nonce = await client.challenge()
    body = {
        "ticket": t.token,
        "door": "front",
        "nonce": b64u_encode(nonce),
        "proof": b64u_encode(SigningKey.generate().sign(b"x").signature),
        "package_code": "PKG-1",
    }
    reply = await client.request("POST", "/v1/access", body)
    assert reply.body["code"] == "bad_proof"
    reply = await client.request("POST", "/v1/access", body)  # the nonce is spent now
    assert reply.body["code"] == "unknown_challenge"
    body["nonce"] = b64u_encode(bytes(32))
    reply = await client.request("POST", "/v1/access", body)
    assert reply.body["code"] == "unknown_challenge"
    assert unlocks(harness) == 0


async def test_challenge_expired(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "gw", settings={("policy", "challenge_ttl_s"): "1"}) as h:
        from gateway.trust.proof import proof_message

        t = h.ticket()
        nonce = await h.client.challenge()
        await asyncio.sleep(1.2)  # the semantics under test is the nonce's lifetime itself
        proof = t.holder.sign(proof_message(GATEWAY_ID, nonce, t.jti, "open")).signature
        reply = await h.client.request(
            "POST",
            "/v1/access",
            {
                "ticket": t.token,
                "door": "front",
                "nonce": b64u_encode(nonce),
                "proof": b64u_encode(proof),
                "package_code": "PKG-1",
            },
        )
        assert reply.body["code"] == "challenge_expired"


async def test_clock_untrusted(harness: GatewayHarness) -> None:
    service = harness.gateway.service
    assert service is not None
    service.clock = lambda: datetime.now(UTC) - timedelta(days=1)
    t = make_ticket(harness.keys.owner, now=datetime.now(UTC) - timedelta(days=1))
    assert (await refused(harness, t, package_code="PKG-1")).code == "clock_untrusted"
    # An emergency ticket opens on an untrusted clock, judged at the time floor, loudly.
    emergency = make_ticket(harness.keys.owner, purpose=Purpose.EMERGENCY)
    reply = await harness.open(emergency)
    assert reply.status == 201
    events = (await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/events"))["events"]
    alarms = [e["body"]["reason"] for e in events if e["kind"] == "alarm.raised"]
    assert any("clock_untrusted" in reason for reason in alarms)


async def test_package_mismatch(harness: GatewayHarness) -> None:
    t = harness.ticket(package_codes=("RIGHT",))
    assert (await refused(harness, t, package_code="WRONG")).code == "package_mismatch"
    assert (await refused(harness, harness.ticket(package_codes=("RIGHT",)))).code == (
        "package_mismatch"
    )


async def test_camera_unavailable_without_live_camera(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "gw", allow_without_camera=False) as h:
        required = h.ticket(camera=Camera.REQUIRED)
        assert (await refused(h, required, package_code="PKG-1")).code == "camera_unavailable"
        preferred = h.ticket(camera=Camera.PREFERRED)
        assert (await h.open(preferred, package_code="PKG-1")).status == 201
        assert unlocks(h) == 1


async def test_door_busy(harness: GatewayHarness) -> None:
    first = harness.ticket()
    await harness.open(first, package_code="PKG-1")
    problem = await refused(harness, harness.ticket(), package_code="PKG-1")
    assert (problem.status, problem.code) == (409, "door_busy")


async def test_lock_unavailable_when_the_motor_jams(harness: GatewayHarness) -> None:
    harness.sim.lock.faults.jam_motor = True
    problem = await refused(harness, harness.ticket(), package_code="PKG-1")
    assert (problem.status, problem.code) == (503, "lock_unavailable")


async def test_storage_unavailable_fails_closed_but_emergency_opens(
    harness: GatewayHarness,
) -> None:
    store = harness.gateway.store
    assert store is not None
    await store.set_page_limit(1)  # SQLite keeps the current size: no page may be added
    # Fill what is left of the last page, so the next write needs a new one.
    for _ in range(200):
        try:
            await store.append("test.filler", {"pad": "x" * 500})
        except Exception:
            break
    problem = await refused(harness, harness.ticket(), package_code="PKG-1")
    assert (problem.status, problem.code) == (503, "storage_unavailable")
    assert unlocks(harness) == 0
    emergency = harness.ticket(purpose=Purpose.EMERGENCY)
    reply = await harness.open(emergency)
    assert reply.status == 201
    assert unlocks(harness) == 1


async def test_bad_request_and_limits(harness: GatewayHarness) -> None:
    client = harness.client
    reply = await client.request("POST", "/v1/access", raw=b"{not json")
    assert (reply.status, reply.body["code"]) == (400, "bad_request")
    reply = await client.request("POST", "/v1/access", {"ticket": "x"})
    assert (reply.status, reply.body["code"]) == (400, "bad_request")
    reply = await client.request("POST", "/v1/access", raw=b'{"a": 1, "a": 2}')
    assert reply.body["code"] == "bad_request"
    reply = await client.request("POST", "/v1/access", raw=b"x" * (17 * 1024))
    assert (reply.status, reply.body["code"]) == (413, "payload_too_large")
    reply = await client.request("GET", "/v1/nothing-here")
    assert (reply.status, reply.body["code"]) == (404, "not_found")
    reply = await client.request("GET", "/v1/access/s-unknown")
    assert (reply.status, reply.body["code"]) == (404, "not_found")
    reply = await client.request("DELETE", "/v1/info")
    assert reply.status == 405
    for r in (reply,):
        assert "Traceback" not in json.dumps(r.body)


async def test_oversized_headers_are_refused(harness: GatewayHarness) -> None:
    reply = await harness.client.request("GET", "/v1/info", headers={"X-Big": "a" * 20_000})
    assert reply.status in (400, 431)
    assert "Traceback" not in json.dumps(reply.body)


async def test_rate_limits(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "gw", ticket_rate_per_minute=2) as h:
        t = h.ticket(package_codes=("A",))
        codes = []
        for _ in range(3):
            try:
                await h.open(t, package_code="WRONG")
            except ApiProblem as p:
                codes.append(p.code)
        assert codes == ["package_mismatch", "package_mismatch", "rate_limited"]
    async with running_harness(tmp_path / "gw2", client_rate_per_minute=3) as h:
        statuses = [(await h.client.request("GET", "/v1/info")).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


async def test_ten_couriers_one_single_use_ticket_one_grant(harness: GatewayHarness) -> None:
    t = harness.ticket()

    async def attempt() -> int | str:
        try:
            return (await harness.open(t, package_code="PKG-1")).status
        except ApiProblem as p:
            return p.code

    results = await asyncio.wait_for(asyncio.gather(*(attempt() for _ in range(10))), WAIT)
    assert results.count(201) == 1, results
    assert all(r in (201, "door_busy", "uses_exhausted") for r in results), results
    assert unlocks(harness) == 1


async def test_malformed_claims_and_not_awaiting_approval(harness: GatewayHarness) -> None:
    from gateway.trust.envelope import TokenKind, seal

    owner = harness.keys.owner
    token = seal(TokenKind.TICKET, {"v": 1, "jti": "t-odd", "door": "front"}, secret64(owner))
    odd = IssuedTicket(token, "t-odd", SigningKey.generate(), "front")
    assert (await refused(harness, odd, package_code="PKG-1")).code == "malformed_claims"

    t = harness.ticket()
    session_id = (await harness.open(t, package_code="PKG-1")).body["session"]
    now = datetime.now(UTC)
    approval = sign_approval(
        Approval(GATEWAY_ID, session_id, t.jti, Decision.APPROVE, now, now + timedelta(minutes=5)),
        secret64(owner),
    )
    body = json.dumps({"approval": approval}).encode()
    reply = await harness.client.request(
        "POST",
        "/v1/owner/approvals",
        raw=body,
        headers=await harness.client.owner_headers(owner, "POST", "/v1/owner/approvals", body),
    )
    assert (reply.status, reply.body["code"]) == (409, "not_awaiting_approval")


async def test_store_gone_is_a_503_problem_not_a_500(harness: GatewayHarness) -> None:
    store = harness.gateway.store
    assert store is not None
    await store.close()
    path = "/v1/owner/events"
    headers = await harness.client.owner_headers(harness.keys.owner, "GET", path, b"")
    reply = await harness.client.request("GET", path, headers=headers)
    assert (reply.status, reply.body["code"]) == (503, "storage_unavailable")
    problem = await refused(harness, harness.ticket(), package_code="PKG-1")
    assert (problem.status, problem.code) == (503, "storage_unavailable")
    assert unlocks(harness) == 0
