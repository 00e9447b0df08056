"""Receipts as witnesses, the equivocation alarm, the owner's reader, mailbox, time and TLS."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import os
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.sync.task import SyncRefused, SyncUnavailable
from gateway.trust.base64url import b64u_encode
from tests.support.cli import run_cli
from tests.support.cloud import (
    GATEWAY_ID,
    MailRecorder,
    append_many,
    new_parties,
    open_sealed_store,
    start_relay,
    sync_for,
    truncate_log,
    write_key_file,
)
from tests.support.relay_backend import RelayBackend


async def test_truncated_log_after_a_receipt_is_an_equivocation_the_owner_sees(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "cloud", parties, backend=relay_backend)
    db = tmp_path / "gw.sqlite3"
    try:
        store = await open_sealed_store(db, parties)
        await append_many(store, 300)
        # The receipt as the gateway's ``done`` answer carries it and the phone saves it. Entry
        # 299 lies past the automatic checkpoint at 256, so it gets one of the whole log.
        receipt = await store.receipt(299)
        await store.close()
        receipt_file = tmp_path / "receipt.json"
        receipt_file.write_text(json.dumps(receipt.to_json()))
        uploaded = await asyncio.to_thread(
            run_cli, "courier", "receipts", "upload", "--cloud", url, str(receipt_file)
        )
        assert uploaded.returncode == 0, uploaded.stderr
        assert "witnessed checkpoint of size 300" in uploaded.stdout

        truncate_log(db, 200)
        store = await open_sealed_store(db, parties)
        assert store.tree_size == 200
        sync = sync_for(store, url, parties, relay_key=server.relay.public_key)
        with pytest.raises(SyncRefused, match="equivocation"):
            await asyncio.wait_for(sync.upload_backlog(), 30)
        await sync.stop()
        await store.close()
        alarms = await server.relay.storage.alarms(GATEWAY_ID)
        assert [a.code for a in alarms] == ["equivocation"]
        assert await server.relay.storage.held_size(GATEWAY_ID) == 0

        owner_key = write_key_file(tmp_path / "owner.key", parties.owner)
        shown = await asyncio.to_thread(
            run_cli,
            "owner",
            "log",
            "--cloud",
            url,
            "--owner-key",
            str(owner_key),
            "--gateway",
            GATEWAY_ID,
        )
        assert shown.returncode == 1
        first = shown.stdout.splitlines()[0]
        assert first.startswith("ALARM equivocation")
        assert "truncated" in first
    finally:
        await server.stop()


async def test_owner_reader_decrypts_the_verified_history(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "cloud", parties, backend=relay_backend)
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    try:
        await append_many(store, 40)
        sync = sync_for(store, url, parties, relay_key=server.relay.public_key)
        assert await asyncio.wait_for(sync.upload_backlog(), 30) == 40
        await sync.stop()
        owner_key = write_key_file(tmp_path / "owner.key", parties.owner)
        shown = await asyncio.to_thread(
            run_cli,
            "owner",
            "log",
            "--cloud",
            url,
            "--owner-key",
            str(owner_key),
            "--gateway",
            GATEWAY_ID,
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "40 entries, verified up to 40" in shown.stdout
        assert "ORDER-00000039" in shown.stdout
        assert "ALARM" not in shown.stdout
        wrong = write_key_file(tmp_path / "other.key", new_parties().owner)
        refused = await asyncio.to_thread(
            run_cli,
            "owner",
            "log",
            "--cloud",
            url,
            "--owner-key",
            str(wrong),
            "--gateway",
            GATEWAY_ID,
        )
        assert refused.returncode == 1
        assert "401" in refused.stderr
    finally:
        await store.close()
        await server.stop()


async def test_mailbox_and_signed_time_reach_the_gateway(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "cloud", parties, backend=relay_backend)
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    try:
        owner_key = write_key_file(tmp_path / "owner.key", parties.owner)
        token = tmp_path / "revocations.token"
        token.write_text("v4.public.revocation-list-token")
        posted = await asyncio.to_thread(
            run_cli,
            "cloud",
            "post",
            "--cloud",
            url,
            "--owner-key",
            str(owner_key),
            "--gateway",
            GATEWAY_ID,
            "--gateway-key",
            b64u_encode(parties.gateway_public),
            "--kind",
            "revocations",
            "--token-file",
            str(token),
        )
        assert posted.returncode == 0, posted.stderr
        recorder = MailRecorder()
        sync = sync_for(store, url, parties, relay_key=server.relay.public_key, mailbox=recorder)
        await asyncio.wait_for(sync.sync_once(), 30)
        assert recorder.revocations == ["v4.public.revocation-list-token"]
        assert len(recorder.floors) == 1
        await asyncio.wait_for(sync.pull_mailbox(recorder), 30)
        assert recorder.revocations == ["v4.public.revocation-list-token"]
        await sync.stop()
        # A relay key that is not the relay's: its time moves nothing.
        sync = sync_for(store, url, parties, relay_key=parties.owner_public)
        assert await asyncio.wait_for(sync.pull_time(MailRecorder()), 30) is None
        await sync.stop()
    finally:
        await store.close()
        await server.stop()


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "threshold-relay")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "relay.crt", tmp_path / "relay.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


async def test_self_signed_relay_is_refused_unless_pinned(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    context, fingerprint = _self_signed(tmp_path)
    server, url = await start_relay(
        tmp_path / "cloud", parties, ssl_context=context, backend=relay_backend
    )
    assert url.startswith("https://")
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    try:
        await append_many(store, 10)
        unpinned = sync_for(store, url, parties)
        with pytest.raises(SyncUnavailable, match=r"(?i)certificate|ssl"):
            await asyncio.wait_for(unpinned.upload_backlog(), 30)
        await unpinned.stop()
        wrong_pin = sync_for(store, url, parties, pin_sha256=os.urandom(32))
        with pytest.raises(SyncUnavailable):
            await asyncio.wait_for(wrong_pin.upload_backlog(), 30)
        await wrong_pin.stop()
        assert await store.acked_tree_size() == 0
        pinned = sync_for(store, url, parties, pin_sha256=fingerprint)
        assert await asyncio.wait_for(pinned.upload_backlog(), 30) == 10
        await pinned.stop()
    finally:
        await store.close()
        await server.stop()
    assert aiohttp  # the client library under test


async def test_the_done_answers_receipt_is_accepted_as_is(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    """The service's ``done`` answer carries ``Store.receipt(...).to_json()``; saved by
    ``courier open --save-receipt``, it uploads without the entry's kind or time."""
    parties = new_parties()
    server, url = await start_relay(tmp_path / "cloud", parties, backend=relay_backend)
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    try:
        await append_many(store, 20)
        done_receipt = (await store.receipt(19)).to_json()
        assert done_receipt["kind"] == "session.granted"
        receipt_file = tmp_path / "done-receipt.json"
        receipt_file.write_text(json.dumps(done_receipt))
        uploaded = await asyncio.to_thread(
            run_cli, "courier", "receipts", "upload", "--cloud", url, str(receipt_file)
        )
        assert uploaded.returncode == 0, uploaded.stderr
        witnessed = await server.relay.storage.witnessed(GATEWAY_ID)
        assert [(w.source, w.checkpoint.checkpoint.tree_size) for w in witnessed] == [
            ("receipt", done_receipt["checkpoint"]["tree_size"])
        ]
    finally:
        await store.close()
        await server.stop()
