"""Receipts under paced uploads (issue 19, docs/api.md "Receipts", docs/privacy.md).

At ``done`` the courier's phone no longer gets a checkpoint signed at that moment (its size
would be the entry's index and its time the departure): it gets a *pending* receipt (its
entry's leaf, which already carries the visit tag) and completes it by asking again after the
next upload slot, against the slot's scheduled checkpoint: the very checkpoint the relay was
shown. What the phone then uploads to the relay is that checkpoint alone: no index, no leaf,
no proof, so the relay cannot tell which entry of the slot, or which visit, it was for.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from nacl.signing import SigningKey

from cloud.relay import RelayServer
from gateway.trust.base64url import b64u_decode, b64u_encode
from gateway.trust.seal import Sealer
from groundwork.files import write_file
from store import merkle
from store.checkpoint import SignedCheckpoint
from tests.support.cli import run_cli
from tests.support.json_schema import answer_schema, problems
from tests.support.observer import REPO, paced_gateway
from tests.support.service import WAIT, set_config
from tests.support.store import new_signer, open_store


async def forced_slot(h: object) -> None:
    sync = h.gateway.sync  # type: ignore[attr-defined]
    sync.round_done.clear()
    sync.sync_now()
    await asyncio.wait_for(sync.round_done.wait(), WAIT)
    assert sync.status.last_error is None, sync.status.last_error


async def test_a_receipt_completes_against_the_next_scheduled_checkpoint(tmp_path: Path) -> None:
    async with paced_gateway(tmp_path, interval_s=3600.0, slots=8, jitter_s=0.0) as (
        h,
        _proxy,
        relay,
    ):
        await asyncio.wait_for(h.gateway.sync.round_done.wait(), WAIT)  # type: ignore[union-attr]
        courier = h.ticket()
        session = (await h.open(courier, package_code="PKG-1")).body["session"]
        await h.wait_session(session, "open")
        pending = (await h.done(courier, session))["receipt"]
        # Pending: the entry is still queued for the next slot. The phone holds its leaf (with
        # its visit tag: format 3) but nothing that dates the visit or places it in the log.
        assert pending["pending"] is True
        assert "checkpoint" not in pending
        assert "inclusion_proof" not in pending
        assert base64.b64decode(pending["leaf_bytes"])[0] == 0x03
        # Both forms are what the gateway's OpenAPI document says a receipt is.
        doc = (await h.client.call("GET", "/v1/openapi.json")).body
        receipt_schema = answer_schema(doc, "POST", "/v1/access/{session}/done", 200)
        assert not any("receipt" in p for p in problems({"receipt": pending}, receipt_schema, doc))

        await forced_slot(h)
        await h.wait_session(session, "closed")
        receipt = (await h.done(courier, session))["receipt"]
        assert "pending" not in receipt
        assert not any("receipt" in p for p in problems({"receipt": receipt}, receipt_schema, doc))
        assert any(
            "receipt" in p
            for p in problems({"receipt": {**receipt, "pending": True}}, receipt_schema, doc)
        )
        assert receipt["index"] == pending["index"]
        assert receipt["leaf_bytes"] == pending["leaf_bytes"]
        checkpoint = SignedCheckpoint.from_note(receipt["checkpoint"]["note"])
        gateway_key = b64u_decode((await h.client.info())["public_key"])
        assert checkpoint.verify(gateway_key)
        proof = [base64.b64decode(p) for p in receipt["inclusion_proof"]]
        assert merkle.verify_inclusion(
            merkle.leaf_hash(base64.b64decode(receipt["leaf_bytes"])),
            receipt["index"],
            checkpoint.checkpoint.tree_size,
            proof,
            checkpoint.checkpoint.root_hash,
        )
        # The checkpoint is the slot's: the boundary the relay holds, not the entry's index.
        boundary = await h.gateway.store.upload_boundary()  # type: ignore[union-attr]
        assert boundary is not None
        assert checkpoint.checkpoint.tree_size == boundary[0]
        assert checkpoint.checkpoint.tree_size > receipt["index"] + 1

        # ``threshold status`` shows the paced upload's queue and its delay.
        assert h.gateway.metrics_url is not None
        port = h.gateway.metrics_url.rsplit(":", 1)[1].split("/")[0]
        config = tmp_path / "gw" / "threshold.toml"
        set_config(config, "metrics", "bind", f'"127.0.0.1:{port}"')
        status = await asyncio.to_thread(run_cli, "status", "--config", str(config))
        # One entry waits: the relay's signed time, written during the slot's exchange.
        assert "ok   upload queue: paced: 1 entries queued, the last leaves within 60 min" in (
            status.stdout
        ), status.stdout

        # The phone uploads it (later, batched); the relay is given the checkpoint alone.
        server = RelayServer(relay)
        url = await server.start()
        try:
            saved = tmp_path / "receipt.json"
            saved.write_text(json.dumps(receipt))
            pending_file = tmp_path / "pending.json"
            pending_file.write_text(json.dumps(pending))
            refused = await asyncio.to_thread(
                cli, "receipts", "upload", "--cloud", url, str(pending_file)
            )
            assert refused.returncode == 2
            assert "pending" in refused.stderr
            assert "Traceback" not in refused.stderr
            shown = await asyncio.to_thread(cli, "receipts", "upload", "--cloud", url, str(saved))
            assert shown.returncode == 0, shown.stderr
        finally:
            await server.stop()
        # The relay keeps a witnessed checkpoint of the slot's size, from a receipt: the row
        # has no index and no leaf to keep.
        rows = await asyncio.to_thread(receipt_rows, relay.directory / "relay.sqlite3")
        assert rows == [checkpoint.checkpoint.tree_size]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "courier", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def receipt_rows(path: Path) -> list[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT tree_size FROM witnessed WHERE source = 'receipt'")
        return [int(row[0]) for row in rows]
    finally:
        conn.close()


async def test_sync_now_on_a_paced_log_sends_only_what_the_slots_sealed_off(
    tmp_path: Path,
) -> None:
    """``threshold sync now`` must not send the queue ahead of its slots: the relay would
    see it, and the next slot's smaller checkpoint would look like a truncation."""
    async with paced_gateway(tmp_path, interval_s=3600.0, slots=8, jitter_s=0.0) as (
        h,
        _proxy,
        relay,
    ):
        sync = h.gateway.sync
        store = h.gateway.store
        assert sync is not None
        assert store is not None
        await asyncio.wait_for(sync.round_done.wait(), WAIT)
        courier = h.ticket()
        session = (await h.open(courier, package_code="PKG-1")).body["session"]
        await h.done(courier, session)
        await h.wait_session(session, "closed")
        boundary = await store.upload_boundary()
        assert boundary is not None
        assert store.tree_size > boundary[0], "the visit waits in the queue"
        config = tmp_path / "gw" / "threshold.toml"
        # The task's status (as of its last slot) shows the queue to ``sync status`` too.
        status = await asyncio.to_thread(run_cli, "sync", "status", "--config", str(config))
        assert "upload queue: 1 entries, the last leaves within 3600 s" in status.stdout, (
            status.stdout
        )
        shown = await asyncio.to_thread(run_cli, "sync", "now", "--config", str(config))
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert await relay_held(relay) == boundary[0]
        await forced_slot(h)
        assert await relay_held(relay) == boundary[0] + 8
        assert await relay_alarms(relay) == []


async def relay_held(relay: object) -> int:
    path = relay.directory / "relay.sqlite3"  # type: ignore[attr-defined]
    return await asyncio.to_thread(_count, path, "SELECT COUNT(*) FROM entry")


async def relay_alarms(relay: object) -> list[int]:
    path = relay.directory / "relay.sqlite3"  # type: ignore[attr-defined]
    count = await asyncio.to_thread(_count, path, "SELECT COUNT(*) FROM alarm")
    return [count] if count else []


def _count(path: Path, query: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute(query).fetchone()[0])
    finally:
        conn.close()


async def test_a_row_edited_to_look_like_padding_is_shown_not_hidden(tmp_path: Path) -> None:
    """The attack: someone with the disk edits an entry's readable kind to ``sync.padding``
    so the owner's views would skip it. Padding is hidden only when the leaf says so too:
    the edited row fails its check and is shown, flagged."""
    db = tmp_path / "threshold.db"
    owner = SigningKey.generate()
    signer = new_signer()
    store = await open_store(db, signer, checkpoint_every=0, seal=Sealer(bytes(owner.verify_key)))
    try:
        await store.append("sync.padding", {})
        await store.append("session.open", {"holder": "someone"})
        await store.append("sync.padding", {})
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER audit_entry_no_update")
    conn.execute("UPDATE audit_entry SET kind = 'sync.padding' WHERE idx = 1")
    conn.commit()
    conn.close()
    store = await open_store(db, signer, seal=Sealer(bytes(owner.verify_key)))
    try:
        shown = await store.checked_entries(0, 10, hide_kind="sync.padding")
    finally:
        await store.close()
    assert [(c.stored.entry.index, c.verified) for c in shown] == [(1, False)]
    assert shown[0].verdict.field == "kind"


async def test_the_courier_cli_waits_for_a_pending_receipt_then_uploads_it(
    tmp_path: Path,
) -> None:
    """``threshold courier open --save-receipt`` asks again until the slot closed, saves the
    completed receipt (with the visit's proof), and ``receipts upload`` sends its checkpoint."""
    async with paced_gateway(tmp_path, interval_s=2.0, slots=8, jitter_s=0.0) as (
        h,
        _proxy,
        relay,
    ):
        t = h.ticket(package_codes=("BOX-9",))
        holder = tmp_path / "holder.key"
        write_file(
            holder, (b64u_encode(bytes(t.holder) + bytes(t.holder.verify_key)) + "\n").encode()
        )
        ticket = tmp_path / "ticket.txt"
        ticket.write_text(t.token + "\n")
        saved = tmp_path / "receipt.json"
        fp = h.gateway.fingerprint
        assert fp is not None
        opened = await asyncio.to_thread(
            run_cli,
            "courier",
            "open",
            "--gateway",
            h.url,
            "--ticket",
            str(ticket),
            "--holder-key",
            str(holder),
            "--door",
            "front",
            "--package-code",
            "BOX-9",
            "--done-after",
            "0",
            "--pin-fingerprint",
            fp,
            "--save-receipt",
            str(saved),
            "--receipt-wait",
            "30",
        )
        assert opened.returncode == 0, opened.stdout + opened.stderr
        assert "receipt pending: waiting for the gateway's next upload slot" in opened.stdout
        receipt = json.loads(saved.read_text())
        assert "pending" not in receipt
        assert receipt["visit_proof"]
        boundary = await h.gateway.store.upload_boundary()  # type: ignore[union-attr]
        assert boundary is not None
        assert (receipt["checkpoint"]["tree_size"] - boundary[0]) % 8 == 0
        server = RelayServer(relay)
        url = await server.start()
        try:
            shown = await asyncio.to_thread(cli, "receipts", "upload", "--cloud", url, str(saved))
            assert shown.returncode == 0, shown.stderr
        finally:
            await server.stop()
