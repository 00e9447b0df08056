"""Invitations over the real API (issue 16): an invitation recorded, its link claimed with a
public key only, the tickets bound to that key opening the door, the link spent atomically
(a second claim, even racing the first, is refused), renewal by proof of the key, and a
withdrawn invitation stopping the key at once. The owner app's passkey step is driven in a
real browser by tests/browser/test_visitors.py; here the invitation is made by the owner
object itself, past that step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from nacl.signing import SigningKey

from gateway.owner.household import household_certificate
from gateway.owner.invitations import Visitors
from gateway.trust.base64url import b64u_decode, b64u_encode
from gateway.trust.certificate import sign_certificate
from gateway.trust.proof import proof_message
from tests.support.service import GATEWAY_ID, GatewayHarness, running_harness, secret64

pytestmark = pytest.mark.asyncio

TERMS: dict[str, Any] = {
    "name": "Maria",
    "kind": "cleaner",
    "doors": ["front"],
    "schedule": [
        {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "00:00",
            "end": "24:00",
        }
    ],
    "days": 30,
    "uses": 5,
    "camera_required": False,
}


@pytest_asyncio.fixture
async def certified(tmp_path: Any) -> AsyncIterator[GatewayHarness]:
    async with running_harness(tmp_path / "gw") as h:
        visitors = h.gateway.visitors
        assert visitors is not None
        cert = household_certificate(
            visitors.household.public_key, GATEWAY_ID, ("front",), datetime.now(UTC)
        )
        token = sign_certificate(cert, secret64(h.keys.owner))
        await h.client.owner(
            h.keys.owner, "POST", "/v1/owner/household-issuer", {"certificate": token}
        )
        yield h


def _visitors(h: GatewayHarness) -> Visitors:
    assert h.gateway.visitors is not None
    return h.gateway.visitors


async def _invite(h: GatewayHarness, **changes: Any) -> str:
    visitors = _visitors(h)
    made = await visitors.invite(visitors.terms({**TERMS, **changes}), "d-test", "Ada's phone")
    link = str(made["link"])
    return link.split("#invite=", 1)[1]


async def _events(h: GatewayHarness) -> list[dict[str, Any]]:
    reply = await h.client.owner(h.keys.owner, "GET", "/v1/owner/events?limit=1000")
    return list(reply["events"])


async def test_claim_binds_the_key_and_the_ticket_opens_the_door(
    certified: GatewayHarness,
) -> None:
    h = certified
    token = await _invite(h)
    preview = await h.client.request("POST", "/v1/visit/preview", {"token": token})
    assert preview.status == 200
    assert preview.body["invited_by"] == "Ada's phone"
    assert preview.body["next_window"] is not None
    phone = SigningKey.generate()
    body = {"token": token, "public_key": b64u_encode(bytes(phone.verify_key))}
    claimed = await h.client.request("POST", "/v1/visit/claim", body)
    assert claimed.status == 201, claimed.body
    (ticket,) = claimed.body["tickets"]
    opened = await h.client.open(
        gateway_id=GATEWAY_ID,
        ticket=ticket["ticket"],
        jti=ticket["jti"],
        holder=phone,
        door="front",
    )
    assert opened.status == 201
    kinds = [e["kind"] for e in await _events(h)]
    assert "visitor.invited" in kinds
    assert "visitor.claimed" in kinds
    assert token not in str(await _events(h))  # the link's secret is never logged

    # A second phone (or whoever intercepted the link) is refused in words.
    thief = SigningKey.generate()
    again = await h.client.request(
        "POST",
        "/v1/visit/claim",
        {"token": token, "public_key": b64u_encode(bytes(thief.verify_key))},
    )
    assert again.status == 409
    assert again.body["code"] == "invitation_used"
    # And the first phone's own ticket cannot be used by another key.
    stolen = await h.client.request("POST", "/v1/visit/preview", {"token": token})
    assert stolen.body["code"] == "invitation_used"


async def test_two_claims_racing_spend_the_link_once(certified: GatewayHarness) -> None:
    h = certified
    token = await _invite(h)
    phones = [SigningKey.generate() for _ in range(6)]
    replies = await asyncio.gather(
        *(
            h.client.request(
                "POST",
                "/v1/visit/claim",
                {"token": token, "public_key": b64u_encode(bytes(p.verify_key))},
            )
            for p in phones
        )
    )
    assert sorted(r.status for r in replies) == [201, 409, 409, 409, 409, 409]
    claims = [e for e in await _events(h) if e["kind"] == "visitor.claimed"]
    assert len(claims) == 1


async def _renew(h: GatewayHarness, invitation: str, key: SigningKey, mode: str = "renew") -> Any:
    nonce_text = (await h.client.request("POST", "/v1/visit/challenge")).body["nonce"]
    message = proof_message(GATEWAY_ID, b64u_decode(nonce_text), invitation, mode)
    proof = b64u_encode(key.sign(message).signature)
    return await h.client.request(
        "POST",
        "/v1/visit/renew",
        {"invitation": invitation, "nonce": nonce_text, "proof": proof, "mode": mode},
    )


async def test_renewal_needs_the_key_and_revocation_stops_it_at_once(
    certified: GatewayHarness,
) -> None:
    h = certified
    token = await _invite(h)
    phone = SigningKey.generate()
    claimed = await h.client.request(
        "POST",
        "/v1/visit/claim",
        {"token": token, "public_key": b64u_encode(bytes(phone.verify_key))},
    )
    invitation = claimed.body["invitation"]
    first = claimed.body["tickets"][0]
    forged = await _renew(h, invitation, SigningKey.generate())
    assert (forged.status, forged.body["code"]) == (403, "proof_refused")
    renewed = await _renew(h, invitation, phone)
    assert renewed.status == 200
    assert renewed.body["tickets"][0]["jti"] != first["jti"]
    exp = datetime.fromisoformat(renewed.body["tickets"][0]["exp"])
    assert exp - datetime.now(UTC) <= timedelta(days=7)

    await _visitors(h).revoke(invitation, "device:d-test")
    refused = await h.client.request("POST", "/v1/visit/renew", {})
    assert refused.status == 400
    stopped = await _renew(h, invitation, phone)
    assert (stopped.status, stopped.body["code"]) == (403, "invitation_revoked")
    status = await _renew(h, invitation, phone, "status")
    assert status.body["revoked"] is True
    from gateway.clients.lan import ApiProblem

    for t in (first, renewed.body["tickets"][0]):
        with pytest.raises(ApiProblem) as denied:
            await h.client.open(
                gateway_id=GATEWAY_ID,
                ticket=t["ticket"],
                jti=t["jti"],
                holder=phone,
                door="front",
            )
        assert denied.value.code == "revoked"
    assert any(e["kind"] == "visitor.revoked" for e in await _events(h))


async def test_claims_from_another_origin_and_bad_keys_are_refused(
    certified: GatewayHarness,
) -> None:
    h = certified
    token = await _invite(h)
    body = {"token": token, "public_key": b64u_encode(bytes(32))[:-1]}
    bad = await h.client.request("POST", "/v1/visit/claim", body)
    assert bad.status == 400
    elsewhere = await h.client.request(
        "POST",
        "/v1/visit/claim",
        {"token": token, "public_key": b64u_encode(bytes(SigningKey.generate().verify_key))},
        headers={"Origin": "https://evil.example"},
    )
    assert elsewhere.status == 403
    unknown = await h.client.request("POST", "/v1/visit/preview", {"token": "x" * 43})
    assert (unknown.status, unknown.body["code"]) == (404, "invitation_unknown")


async def test_a_withdrawn_key_stays_stopped_after_a_restart(tmp_path: Any) -> None:
    from tests.support.service import start_gateway

    async with running_harness(tmp_path / "gw") as h:
        visitors = _visitors(h)
        cert = household_certificate(
            visitors.household.public_key, GATEWAY_ID, ("front",), datetime.now(UTC)
        )
        await visitors.certify(sign_certificate(cert, secret64(h.keys.owner)))
        token = await _invite(h)
        phone = SigningKey.generate()
        claimed = await h.client.request(
            "POST",
            "/v1/visit/claim",
            {"token": token, "public_key": b64u_encode(bytes(phone.verify_key))},
        )
        ticket = claimed.body["tickets"][0]
        await visitors.revoke(claimed.body["invitation"], "device:d-test")
        config_path = h.gateway.config.directory / "threshold.toml"
    gateway = await start_gateway(config_path)
    from gateway.clients.lan import ApiProblem, GatewayClient

    client = GatewayClient(gateway.url, fingerprint=gateway.fingerprint, timeout_s=15)
    try:
        with pytest.raises(ApiProblem) as denied:
            await client.open(
                gateway_id=GATEWAY_ID,
                ticket=ticket["ticket"],
                jti=ticket["jti"],
                holder=phone,
                door="front",
            )
        assert denied.value.code == "revoked"
    finally:
        await client.close()
        await gateway.stop()


async def _open_and_leave(h: GatewayHarness, ticket: dict[str, Any], phone: SigningKey) -> None:
    opened = await h.client.open(
        gateway_id=GATEWAY_ID,
        ticket=ticket["ticket"],
        jti=ticket["jti"],
        holder=phone,
        door="front",
    )
    assert opened.status == 201
    await h.client.done(
        gateway_id=GATEWAY_ID, session_id=opened.body["session"], jti=ticket["jti"], holder=phone
    )


async def test_uses_in_all_hold_across_renewals_and_races(certified: GatewayHarness) -> None:
    """``uses_total`` counts the whole arrangement: a renewal does not give the uses back,
    and requests racing for the last uses spend exactly what is left (the store's count)."""
    from gateway.clients.lan import ApiProblem
    from gateway.trust.keys import key_id

    h = certified
    token = await _invite(h, uses_total=4)
    phone = SigningKey.generate()
    claimed = await h.client.request(
        "POST",
        "/v1/visit/claim",
        {"token": token, "public_key": b64u_encode(bytes(phone.verify_key))},
    )
    assert claimed.status == 201, claimed.body
    assert claimed.body["uses_total"] == 4
    first = claimed.body["tickets"][0]
    await _open_and_leave(h, first, phone)

    renewed = await _renew(h, claimed.body["invitation"], phone)
    assert renewed.status == 200
    second = renewed.body["tickets"][0]
    assert second["jti"] == first["jti"]  # the arrangement's one count, not a fresh one
    await _open_and_leave(h, second, phone)

    # Ten requests race for the two uses left, on the very count the door keeps.
    store = h.gateway.store
    assert store is not None
    kid = key_id(_visitors(h).household.public_key)
    answers = await asyncio.gather(*(store.consume_use(kid, second["jti"], 4) for _ in range(10)))
    assert sum(a.granted for a in answers) == 2

    for t in (first, second):
        with pytest.raises(ApiProblem) as spent:
            await h.client.open(
                gateway_id=GATEWAY_ID, ticket=t["ticket"], jti=t["jti"], holder=phone, door="front"
            )
        assert spent.value.code == "uses_exhausted"
    # A further renewal still carries the spent count.
    third = (await _renew(h, claimed.body["invitation"], phone)).body["tickets"][0]
    with pytest.raises(ApiProblem) as still:
        await h.client.open(
            gateway_id=GATEWAY_ID,
            ticket=third["ticket"],
            jti=third["jti"],
            holder=phone,
            door="front",
        )
    assert still.value.code == "uses_exhausted"


async def test_without_uses_in_all_each_ticket_counts_its_own(certified: GatewayHarness) -> None:
    h = certified
    token = await _invite(h, uses=1)
    phone = SigningKey.generate()
    claimed = await h.client.request(
        "POST",
        "/v1/visit/claim",
        {"token": token, "public_key": b64u_encode(bytes(phone.verify_key))},
    )
    assert "uses_total" not in claimed.body
    await _open_and_leave(h, claimed.body["tickets"][0], phone)
    renewed = await _renew(h, claimed.body["invitation"], phone)
    await _open_and_leave(h, renewed.body["tickets"][0], phone)


def _set_clocks(h: GatewayHarness, by: timedelta) -> None:
    """Simulated time: the door's and the invitations' clock moved ``by``."""
    service = h.gateway.service
    assert service is not None

    def clock() -> datetime:
        return datetime.now(UTC) + by

    service.clock = clock
    _visitors(h).clock = clock


async def test_uses_per_visit_hold_across_renewals_and_races(certified: GatewayHarness) -> None:
    """``uses_per_window``: each visit (a schedule window on one day) has its own count; a
    renewal in the same visit gives nothing back, racing requests spend exactly what is left,
    and the next visit starts afresh."""
    from gateway.clients.lan import ApiProblem
    from gateway.trust.keys import key_id

    h = certified
    now = datetime.now(UTC)
    noon = (now + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    _set_clocks(h, noon - now)  # tomorrow at noon: well inside that day's window
    token = await _invite(h, uses_per_window=3)
    phone = SigningKey.generate()
    claimed = await h.client.request(
        "POST",
        "/v1/visit/claim",
        {"token": token, "public_key": b64u_encode(bytes(phone.verify_key))},
    )
    assert claimed.status == 201, claimed.body
    assert claimed.body["uses_per_window"] == 3
    first = claimed.body["tickets"][0]
    await _open_and_leave(h, first, phone)

    renewed = await _renew(h, claimed.body["invitation"], phone)
    second = renewed.body["tickets"][0]
    assert second["jti"] == first["jti"]  # the same visit, the same count
    await _open_and_leave(h, second, phone)

    store = h.gateway.store
    assert store is not None
    kid = key_id(_visitors(h).household.public_key)
    answers = await asyncio.gather(*(store.consume_use(kid, second["jti"], 3) for _ in range(10)))
    assert sum(a.granted for a in answers) == 1

    with pytest.raises(ApiProblem) as spent:
        await h.client.open(
            gateway_id=GATEWAY_ID,
            ticket=second["ticket"],
            jti=second["jti"],
            holder=phone,
            door="front",
        )
    assert spent.value.code == "uses_exhausted"

    # The next day's visit: a renewal gives its own ticket and count.
    _set_clocks(h, noon - now + timedelta(days=1))
    nextday = (await _renew(h, claimed.body["invitation"], phone)).body["tickets"][0]
    assert nextday["jti"] != first["jti"]
    await _open_and_leave(h, nextday, phone)
