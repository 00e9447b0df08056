"""Issue 11, finding 9: one issuer burns another's ticket uses by reusing its ticket id.

Use counts were keyed on ``jti`` alone. A company the owner certified (for its own deliveries)
issues a ticket to its own phone with the id of the owner's single-use ticket for the
plumber, uses it, and the plumber's ticket is then refused as ``uses_exhausted``. Counts are
now keyed on the issuer (the signing key's id) and the ticket id. Against the real gateway
over HTTPS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from nacl.signing import SigningKey

from ble.driver import LockState
from gateway.clients.lan import ApiProblem
from gateway.trust.certificate import IssuerCertificate, sign_certificate
from gateway.trust.ticket import Purpose
from tests.support.service import GATEWAY_ID, GatewayHarness, harness, make_ticket, secret64

__all__ = ["harness"]


async def test_another_issuer_reusing_the_id_does_not_spend_the_owners_ticket(
    harness: GatewayHarness,
) -> None:
    owner = harness.keys.owner
    company = SigningKey.generate()
    now = datetime.now(UTC)
    cert = sign_certificate(
        IssuerCertificate(
            sub="parcels-inc",
            key=bytes(company.verify_key),
            aud=GATEWAY_ID,
            jti="cert-parcels-1",
            iat=now - timedelta(hours=1),
            nbf=now - timedelta(hours=1),
            exp=now + timedelta(days=30),
            purposes=(Purpose.DELIVERY,),
        ),
        secret64(owner),
    )
    plumber = make_ticket(owner, jti="t-plumber-0602", purpose=Purpose.SERVICE, uses=1)
    squatter = make_ticket(
        owner,
        jti="t-plumber-0602",
        issuer=company,
        issuer_name="parcels-inc",
        certificate=cert,
        uses=1,
    )

    # The company's ticket with the same id opens (it is its own, valid ticket) ...
    reply = await harness.open(squatter, package_code="PKG-1")
    await harness.wait_lock(LockState.UNLOCKED)
    await harness.done(squatter, reply.body["session"])
    await harness.wait_lock(LockState.LOCKED)
    # ... and the owner's single-use ticket for the plumber still opens after it.
    reply = await harness.open(plumber)
    assert reply.status == 201
    await harness.wait_lock(LockState.UNLOCKED)
    await harness.done(plumber, reply.body["session"])
    await harness.wait_lock(LockState.LOCKED)
    # Each count still bites: the plumber's ticket, used once, is now used up.
    with pytest.raises(ApiProblem) as info:
        await harness.open(plumber)
    assert info.value.code == "uses_exhausted"
