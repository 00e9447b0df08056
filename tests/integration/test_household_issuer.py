"""The household issuer (issue 16): made at ``init`` with mode 0600 and checked at start,
certified once by the root key (``threshold owner household-issuer --certify``), refusing a
certificate wider than its caps, and issuing tickets the door accepts within them."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from gateway.app.file_modes import SecretFileExposed, refuse_exposed, secret_files
from gateway.owner.household import HouseholdRefused, HouseholdUncertified, key_path
from gateway.trust.base64url import b64u_decode
from gateway.trust.certificate import IssuerCertificate, sign_certificate
from gateway.trust.ticket import Camera, Purpose
from tests.integration.test_service_cli import key_file, threshold
from tests.support.service import GATEWAY_ID, GatewayHarness, harness, secret64

__all__ = ["harness"]  # the fixture, imported for pytest


def _events(reply: dict[str, object]) -> list[dict[str, object]]:
    events = reply["events"]
    assert isinstance(events, list)
    return events


async def test_the_key_is_made_at_init_private_and_checked(harness: GatewayHarness) -> None:
    path = key_path(harness.directory)
    assert path.stat().st_mode & 0o777 == 0o600
    files = secret_files(harness.gateway.config)
    assert path in [f.path for f in files]
    os.chmod(path, 0o640)
    with pytest.raises(SecretFileExposed, match="household issuer"):
        refuse_exposed(files)
    os.chmod(path, 0o600)


async def test_certify_once_with_the_root_key_then_issue_within_the_caps(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    owner = key_file(tmp_path, "owner.key", harness.keys.owner)
    fp = harness.gateway.fingerprint
    assert fp is not None
    common = ("--gateway", harness.url, "--owner-key", str(owner), "--pin-fingerprint", fp)
    code, out, err = await threshold("owner", "household-issuer", *common)
    assert code == 0, err
    assert "not certified yet" in err
    visitors = harness.gateway.visitors
    assert visitors is not None
    with pytest.raises(HouseholdUncertified):
        visitors.household.certified()

    code, out, err = await threshold(
        "owner", "household-issuer", "--certify", "--door", "front", *common
    )
    assert code == 0, err
    assert "purposes: service, guest" in out
    assert "doors: front" in out
    assert "longest ticket: 168 h" in out
    events = _events(await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/events"))
    certified = [e for e in events if e["kind"] == "household.certified"]
    assert len(certified) == 1

    # The app's devices issue within the caps: the ticket opens the door.
    holder = SigningKey.generate()
    now = datetime.now(UTC)
    ticket, token = visitors.household.issue(
        holder_key=bytes(holder.verify_key),
        holder="Maria (cleaner)",
        door="front",
        purpose=Purpose.SERVICE,
        nbf=now - timedelta(minutes=1),
        exp=now + timedelta(days=30),  # cut to 7 days
        uses=5,
        schedule=(),
        camera=Camera.PREFERRED,
        now=now,
    )
    assert ticket.exp - ticket.nbf <= timedelta(days=7)
    reply = await harness.client.open(
        gateway_id=GATEWAY_ID, ticket=token, jti=ticket.jti, holder=holder, door="front"
    )
    assert reply.status == 201
    with pytest.raises(HouseholdRefused, match="door back"):
        visitors.household.check_terms(("front", "back"), Purpose.SERVICE, ())
    visitors.household.check_terms(("front",), Purpose.GUEST, ())
    with pytest.raises(HouseholdRefused, match="delivery"):
        visitors.household.issue(
            holder_key=bytes(holder.verify_key),
            holder="x",
            door="front",
            purpose=Purpose.DELIVERY,
            nbf=now,
            exp=now + timedelta(hours=1),
            uses=1,
            schedule=(),
            camera=Camera.PREFERRED,
            now=now,
        )


async def test_a_certificate_wider_than_the_caps_is_refused(harness: GatewayHarness) -> None:
    shown = await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/household-issuer")
    now = datetime.now(UTC)
    wide = IssuerCertificate(
        sub="household",
        key=b64u_decode(str(shown["public_key"])),
        aud=GATEWAY_ID,
        jti="household-wide",
        iat=now,
        nbf=now,
        exp=now + timedelta(days=30),
        doors=("front",),
        purposes=(Purpose.SERVICE, Purpose.DELIVERY),
        max_ticket_s=7 * 86400,
    )
    token = sign_certificate(wide, secret64(harness.keys.owner))
    reply = await harness.client.request(
        "POST", "/v1/owner/household-issuer", {"certificate": token}
    )
    assert reply.status == 401  # never without the root key's request signature
    from gateway.clients.lan import ApiProblem

    with pytest.raises(ApiProblem) as refused:
        await harness.client.owner(
            harness.keys.owner, "POST", "/v1/owner/household-issuer", {"certificate": token}
        )
    assert "service and guest" in str(refused.value)
    # Signed by another key than the owner's: refused too.
    stranger = sign_certificate(
        IssuerCertificate(**{**_fields(wide), "purposes": (Purpose.GUEST,)}),
        secret64(SigningKey.generate()),
    )
    with pytest.raises(ApiProblem) as refused:
        await harness.client.owner(
            harness.keys.owner, "POST", "/v1/owner/household-issuer", {"certificate": stranger}
        )
    assert refused.value.code == "household_refused"


def _fields(cert: IssuerCertificate) -> dict[str, object]:
    return {name: getattr(cert, name) for name in IssuerCertificate.__dataclass_fields__}
