"""Issue 11, finding 5: a company certified with ``issuer certify``'s defaults mints
emergency tickets.

``purposes`` defaulted to any, emergency included: a delivery company the owner certified
without thinking about purposes could sign itself an emergency ticket, which opens without
the camera and on an untrusted clock. Emergency is now never implied: a certificate allows it
only when the owner names it, and ``issuer certify`` says what the certificate allows. The
certificate is made with the owner's real tooling; the tickets are presented to the real
gateway over HTTPS.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from ble.driver import LockState
from gateway.cli.inputs import write_secret_key
from gateway.clients.lan import ApiProblem
from gateway.trust.base64url import b64u_encode
from gateway.trust.claims import format_time
from gateway.trust.ticket import Purpose
from tests.support.cli import run_cli
from tests.support.service import GATEWAY_ID, GatewayHarness, harness, make_ticket, secret64

__all__ = ["harness"]


async def certify(harness: GatewayHarness, directory: Path, company: SigningKey, *extra: str):
    key = directory / "owner.key"
    if not key.exists():
        write_secret_key(str(key), secret64(harness.keys.owner))
    result = await asyncio.to_thread(
        run_cli,
        "issuer",
        "certify",
        "--owner-key",
        str(key),
        "--issuer-pub",
        b64u_encode(bytes(company.verify_key)),
        "--gateway",
        GATEWAY_ID,
        "--name",
        "parcels-inc",
        "--not-before",
        format_time(datetime.now(UTC) - timedelta(hours=1)),
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip(), result.stderr


async def test_a_default_certificate_cannot_mint_emergency_tickets(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    company = SigningKey.generate()
    cert, shown = await certify(harness, tmp_path, company)
    assert "emergency tickets: no" in shown
    forged = make_ticket(
        harness.keys.owner,
        purpose=Purpose.EMERGENCY,
        issuer=company,
        issuer_name="parcels-inc",
        certificate=cert,
    )
    with pytest.raises(ApiProblem) as info:
        await harness.open(forged)
    assert info.value.code == "certificate_exceeded"
    assert "emergency not named in certificate" in str(info.value)
    assert harness.sim.lock.lock_state.name == "LOCKED"

    # The same company's ordinary purposes still work under the default certificate.
    delivery = make_ticket(
        harness.keys.owner, issuer=company, issuer_name="parcels-inc", certificate=cert
    )
    reply = await harness.open(delivery, package_code="PKG-1")
    await harness.wait_lock(LockState.UNLOCKED)
    await harness.done(delivery, reply.body["session"])
    await harness.wait_lock(LockState.LOCKED)


async def test_emergency_only_when_the_owner_names_it(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    responders = SigningKey.generate()
    cert, shown = await certify(harness, tmp_path, responders, "--purposes", "emergency")
    assert "emergency tickets: ALLOWED (named explicitly)" in shown
    assert "purposes: emergency" in shown
    ticket = make_ticket(
        harness.keys.owner,
        purpose=Purpose.EMERGENCY,
        issuer=responders,
        issuer_name="parcels-inc",
        certificate=cert,
    )
    reply = await harness.open(ticket)
    assert reply.status == 201
    await harness.wait_lock(LockState.UNLOCKED)
    await harness.done(ticket, reply.body["session"])
    await harness.wait_lock(LockState.LOCKED)
