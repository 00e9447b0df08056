"""Issue 11, finding 10: a copied ticket token, without the holder's key, writes
``session.denied`` entries naming the holder.

The refusal of a denied ticket was written to the audit log before the holder's proof was
checked, so anyone holding a copy of a token (a screenshot, a forwarded message) could fill
the log with entries in the holder's name. Refusals of genuine holders are now logged only
after the proof verifies; the rest are counted. Against the real gateway over HTTPS.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nacl.signing import SigningKey

from gateway.clients.lan import ApiProblem
from tests.support.service import GatewayHarness, IssuedTicket, harness

__all__ = ["harness"]


async def refusal(harness: GatewayHarness, t: IssuedTicket) -> str:
    with pytest.raises(ApiProblem) as info:
        await harness.open(t, package_code="PKG-1")
    return info.value.code


async def denials(harness: GatewayHarness) -> list[dict[str, Any]]:
    reply = await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/events")
    return [e for e in reply["events"] if e["kind"] == "session.denied"]


async def test_a_copied_token_alone_writes_nothing_in_the_holders_name(
    harness: GatewayHarness,
) -> None:
    assert harness.gateway.service is not None
    service = harness.gateway.service
    counted = service.unauthenticated_refusals
    now = datetime.now(UTC)
    expired = harness.ticket(
        subject="Dana Holder", nbf=now - timedelta(hours=3), lifetime=timedelta(hours=1)
    )
    valid = harness.ticket(subject="Dana Holder")
    for genuine in (expired, valid):
        # The attacker has the token, not the holder's key: they sign with their own.
        copy = dataclasses.replace(genuine, holder=SigningKey.generate())
        for _ in range(3):
            assert await refusal(harness, copy) in ("expired", "bad_proof")
    assert await denials(harness) == []
    assert service.unauthenticated_refusals == counted + 6

    # The genuine holder of the expired ticket is refused on the record, as before.
    assert await refusal(harness, expired) == "expired"
    assert len(await denials(harness)) == 1
