"""Owner-signed revocations and approvals through the relay, verified and applied by the
gateway's ``AccessMailbox`` and access service over a real store (the running gateway's
path is in ``test_gateway_mailbox.py``)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from nacl.signing import SigningKey

from gateway.access.admission import AccessSettings
from gateway.access.errors import AccessCode, AccessRefused, DocumentRejected
from gateway.access.ledger import StoreLedger
from gateway.access.policy import PolicyRules
from gateway.access.service import AccessService
from gateway.clients import cloud as cloud_client
from gateway.sync.mailbox import AccessMailbox
from gateway.trust.approval import Approval, Decision, sign_approval
from gateway.trust.keys import TrustAnchors
from gateway.trust.owner_mail import seal_mail
from gateway.trust.revocation import sign_revocations
from tests.support.cloud import GATEWAY_ID, new_parties, open_sealed_store, start_relay, sync_for
from tests.support.relay_backend import RelayBackend
from tests.support.tickets import revocation_list


def secret64(key: SigningKey) -> bytes:
    return bytes(key) + bytes(key.verify_key)


async def post(url: str, owner: SigningKey, gateway_public: bytes, kind: str, token: str) -> None:
    sealed = seal_mail(gateway_public, kind, token)
    body = json.dumps({"sealed": base64.b64encode(sealed).decode()}).encode()
    async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
        path = f"/v1/owner/gateways/{GATEWAY_ID}/mailbox"
        await cloud_client.owner_post(session, url, owner, path, body)


async def test_revocations_only_add_and_forgeries_are_ignored(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "cloud", parties, backend=relay_backend)
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    now = datetime.now(UTC).replace(microsecond=0)
    anchors = TrustAnchors.of(parties.owner_public)
    settings = AccessSettings(GATEWAY_ID, anchors, UTC, PolicyRules())
    service = AccessService(settings, StoreLedger(store, GATEWAY_ID), {})
    await service.start()
    try:
        owner64 = secret64(parties.owner)
        until = now + timedelta(days=1)
        newer = sign_revocations(
            revocation_list(5, aud=(GATEWAY_ID,), iat=now, until=until, jti=("t-1",)), owner64
        )
        older = sign_revocations(
            revocation_list(3, aud=(GATEWAY_ID,), iat=now, until=until, jti=("t-0",)), owner64
        )
        elsewhere = sign_revocations(
            revocation_list(6, aud=("gw-cabin",), iat=now, until=until, jti=("t-9",)), owner64
        )
        forged = sign_revocations(
            revocation_list(9, aud=(GATEWAY_ID,), iat=now, jti=("t-2",)),
            secret64(SigningKey(os.urandom(32))),
        )
        approval = sign_approval(
            Approval(GATEWAY_ID, "s-1", "a-1", Decision.APPROVE, now, now + timedelta(minutes=5)),
            owner64,
        )
        for kind, token in (
            ("revocations", newer),
            ("revocations", older),
            ("revocations", elsewhere),
            ("revocations", forged),
            ("approval", approval),
        ):
            await post(url, parties.owner, parties.gateway_public, kind, token)
        # Mail sealed to another key, and garbage: dropped without wedging the mailbox.
        await post(url, parties.owner, parties.owner_public, "revocations", forged)
        mailbox = AccessMailbox(service)
        sync = sync_for(store, url, parties, relay_key=server.relay.public_key)
        assert await asyncio.wait_for(sync.pull_mailbox(mailbox), 30) == 6
        held = await store.revocation_list()
        assert held is not None
        assert held.seq == 5
        # The older list adds its entry; the cabin's list and the forgery add nothing.
        assert {(e.kind, e.value) for e in await store.revocation_entries()} == {
            ("jti", "t-0"),
            ("jti", "t-1"),
        }
        # The service holds the same union: the older list again changes nothing, and the
        # cabin's list is rejected as another gateway's.
        assert await service.set_revocations(older) == 5
        with pytest.raises(DocumentRejected, match="another gateway") as cabin:
            await mailbox.apply_revocations(elsewhere)
        assert cabin.value.access_code is AccessCode.WRONG_GATEWAY
        # The approval reached the service, which knows no session s-1.
        with pytest.raises(AccessRefused, match="no session s-1"):
            await mailbox.apply_approval(approval)
        floor_before = await store.time_floor()
        new_floor = await asyncio.wait_for(sync.pull_time(mailbox), 30)
        assert new_floor is not None
        assert new_floor >= floor_before
        assert await store.time_floor() == new_floor
        await sync.stop()
    finally:
        await service.shutdown()
        await store.close()
        await server.stop()
