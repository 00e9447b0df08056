"""Owner-signed revocations and approvals through the relay, verified and applied by the gateway."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from nacl.signing import SigningKey

from gateway.clients import cloud as cloud_client
from gateway.sync.mailbox import StoreMailbox
from gateway.trust.approval import Approval, Decision, sign_approval
from gateway.trust.keys import TrustAnchors
from gateway.trust.owner_mail import seal_mail
from gateway.trust.revocation import RevocationList, sign_revocations, verify_revocations
from store.state import RevocationOutcome
from tests.support.cloud import GATEWAY_ID, new_parties, open_sealed_store, start_relay, sync_for
from tests.support.relay_backend import RelayBackend


def secret64(key: SigningKey) -> bytes:
    return bytes(key) + bytes(key.verify_key)


async def post(url: str, owner: SigningKey, gateway_public: bytes, kind: str, token: str) -> None:
    sealed = seal_mail(gateway_public, kind, token)
    body = json.dumps({"sealed": base64.b64encode(sealed).decode()}).encode()
    async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
        path = f"/v1/owner/gateways/{GATEWAY_ID}/mailbox"
        await cloud_client.owner_post(session, url, owner, path, body)


async def test_revocations_apply_only_forward_and_forgeries_are_ignored(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "cloud", parties, backend=relay_backend)
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    now = datetime.now(UTC).replace(microsecond=0)
    approvals: list[Approval] = []

    async def sink(approval: Approval) -> None:
        approvals.append(approval)

    try:
        owner64 = secret64(parties.owner)
        newer = sign_revocations(RevocationList(seq=5, iat=now, jti=frozenset({"t-1"})), owner64)
        older = sign_revocations(RevocationList(seq=3, iat=now, jti=frozenset()), owner64)
        forged = sign_revocations(
            RevocationList(seq=9, iat=now, jti=frozenset()), secret64(SigningKey(os.urandom(32)))
        )
        approval = sign_approval(
            Approval(GATEWAY_ID, "s-1", "a-1", Decision.APPROVE, now, now + timedelta(minutes=5)),
            owner64,
        )
        for kind, token in (
            ("revocations", newer),
            ("revocations", older),
            ("revocations", forged),
            ("approval", approval),
        ):
            await post(url, parties.owner, parties.gateway_public, kind, token)
        # Mail sealed to another key, and garbage: dropped without wedging the mailbox.
        await post(url, parties.owner, parties.owner_public, "revocations", forged)
        anchors = TrustAnchors.of(parties.owner_public)
        mailbox = StoreMailbox(store, anchors, sink)
        sync = sync_for(store, url, parties, relay_key=server.relay.public_key)
        assert await asyncio.wait_for(sync.pull_mailbox(mailbox), 30) == 5
        held = await store.revocation_list()
        assert held is not None
        assert held.seq == 5
        assert verify_revocations(held.token, anchors).jti == frozenset({"t-1"})
        assert mailbox.last_revocation_outcome is RevocationOutcome.STALE
        assert [a.session for a in approvals] == ["s-1"]
        floor_before = await store.time_floor()
        new_floor = await asyncio.wait_for(sync.pull_time(mailbox), 30)
        assert new_floor is not None
        assert new_floor >= floor_before
        assert await store.time_floor() == new_floor
        await sync.stop()
    finally:
        await store.close()
        await server.stop()
