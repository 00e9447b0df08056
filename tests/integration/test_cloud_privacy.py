"""What the relay learns: nothing of who came, why, or which door.

Every byte the relay stores (database and WAL: the SQLite files, or on PostgreSQL the
database's files and the cluster's WAL) and every HTTP body and header that passed
through the wire is searched for the household's plaintext, raw and in every base64
alignment: holder names, order ids, door names, purposes, package codes, and the revoked
names and approved session in the owner's mail. (The full-demo variant of this test runs the
gateway's `threshold demo` with sync on once the service is wired; see docs/cloud.md.)
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from nacl.signing import SigningKey

from cloud.wire import WireReceipt
from gateway.clients import cloud as cloud_client
from gateway.trust.approval import Approval, Decision, decode_approval, sign_approval
from gateway.trust.keys import TrustAnchors
from gateway.trust.owner_mail import seal_mail
from gateway.trust.revocation import sign_revocations, verify_revocations
from tests.support.cloud import (
    GATEWAY_ID,
    MailRecorder,
    new_parties,
    open_sealed_store,
    start_relay,
    sync_for,
)
from tests.support.fault_proxy import FaultPlan, FaultProxy
from tests.support.relay_backend import RelayBackend
from tests.support.tickets import revocation_list

SECRETS = (
    "Dana Secretname",
    "ORDER-7731-QX",
    "back-garden-door",
    "in-home-delivery",
    "dog-walking",
    "PKG-4417-XQ",
    "Revoked Holdername",
    "ticket-revoked-991",
    "session-survey-5521",
)


def forms(secret: str) -> list[bytes]:
    """The secret's bytes, and what base64 or base64url makes of them at each alignment."""
    raw = secret.encode()
    found = [raw]
    for pad in (b"", b"\x00", b"\x00\x00"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(pad + raw).rstrip(b"=")
            # Drop the characters that mix with the alignment bytes at either end.
            found.append(text[len(pad) * 2 : -2])
    return found


def leaks(blob: bytes) -> list[str]:
    return [s for s in SECRETS if any(form and form in blob for form in forms(s))]


def files_under(directory: Path, pattern: str) -> list[bytes]:
    """The bytes of every file matching ``pattern``; the first item is all of them joined."""
    blobs = [path.read_bytes() for path in sorted(directory.glob(pattern)) if path.is_file()]
    return [b"".join(blobs), *blobs]


def secret64(key: SigningKey) -> bytes:
    return bytes(key) + bytes(key.verify_key)


async def test_relay_and_wire_hold_no_household_plaintext(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    relay_dir = tmp_path / "cloud"
    server, _ = await start_relay(relay_dir, parties, backend=relay_backend)
    proxy = FaultProxy(server.port, FaultPlan(weights={"pass": 1.0}))
    url = await proxy.start()
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        await store.append(
            "session.granted",
            {
                "holder": "Dana Secretname",
                "order": "ORDER-7731-QX",
                "door": "back-garden-door",
                "purpose": "in-home-delivery",
                "package_code": "PKG-4417-XQ",
            },
        )
        await store.append("session.granted", {"holder": "Walker", "purpose": "dog-walking"})
        # Uploaded as `threshold courier receipts upload` does: the phone's copy of the `done`
        # answer, in the relay's wire form (sealed leaf, proof, checkpoint; no kind, no time).
        receipt = WireReceipt.from_json((await store.receipt(0)).to_json())
        owner64 = secret64(parties.owner)
        revocations = sign_revocations(
            revocation_list(
                1,
                aud=(GATEWAY_ID,),
                iat=now,
                until=now + timedelta(days=1),
                jti=("ticket-revoked-991",),
                sub=("Revoked Holdername",),
            ),
            owner64,
        )
        approval = sign_approval(
            Approval(
                GATEWAY_ID,
                "session-survey-5521",
                "a-1",
                Decision.APPROVE,
                now,
                now + timedelta(minutes=5),
            ),
            owner64,
        )
        async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
            async with session.post(url + "/v1/receipts", json=receipt.to_json()) as response:
                assert response.status == 200
            for kind, token in (("revocations", revocations), ("approval", approval)):
                sealed = seal_mail(parties.gateway_public, kind, token)
                body = json.dumps({"sealed": base64.b64encode(sealed).decode()}).encode()
                path = f"/v1/owner/gateways/{GATEWAY_ID}/mailbox"
                await cloud_client.owner_post(session, url, parties.owner, path, body)
        mail = MailRecorder()
        sync = sync_for(store, url, parties, relay_key=server.relay.public_key, mailbox=mail)
        await asyncio.wait_for(sync.sync_once(), 30)
        await sync.stop()
        async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
            entries, _, _ = await cloud_client.download_log(session, url, parties.owner, GATEWAY_ID)
        # The flow really happened: entries up, mail applied, owner read back.
        assert await store.acked_tree_size() == store.tree_size
        assert len(entries) == store.tree_size
        anchors = TrustAnchors.of(parties.owner_public)
        assert [decode_approval(a, anchors).session for a in mail.approvals] == [
            "session-survey-5521"
        ]
        assert [
            verify_revocations(r, anchors, gateway_id=GATEWAY_ID).seq for r in mail.revocations
        ] == [1]
    finally:
        await store.close()
        await proxy.stop()
        await server.stop()
    # The test's own probe works: the plaintext is in the gateway's own database.
    assert "Dana Secretname" in leaks(files_under(tmp_path, "gw.sqlite3*")[0])
    assert "Revoked Holdername" in leaks(revocations.encode())
    assert len(proxy.captured) > 10_000
    assert leaks(bytes(proxy.captured)) == []
    relay_files = files_under(relay_dir, "*")
    assert len(relay_files) >= 3  # the database (or its relay.toml), its WAL, the relay key
    stored = [path.read_bytes() for path in relay_backend.stored_files(relay_dir)]
    # The probe reads where the relay keeps its data: the sealed entries are in those files.
    assert all(any(sealed in blob for blob in stored) for _, sealed in entries)
    for blob in [*relay_files, *stored]:
        assert leaks(blob) == []
