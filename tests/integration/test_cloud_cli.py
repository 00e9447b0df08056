"""The cloud commands as a user runs them, and a relay that lost data (restored backup)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from cloud.relay import Relay, RelayServer
from gateway.trust.base64url import b64u_encode as b64u
from tests.support.cli import run_cli
from tests.support.cloud import (
    GATEWAY_ID,
    append_many,
    new_parties,
    open_sealed_store,
    start_relay,
    sync_for,
    write_key_file,
)
from tests.support.relay_backend import RelayBackend


async def test_register_sync_now_and_status(tmp_path: Path) -> None:
    parties = new_parties()
    relay_dir = tmp_path / "cloud"
    registered = await asyncio.to_thread(
        run_cli,
        "cloud",
        "register-gateway",
        "--dir",
        str(relay_dir),
        "--gateway-id",
        GATEWAY_ID,
        "--gateway-key",
        b64u(parties.gateway_public),
        "--owner-key",
        b64u(parties.owner_public),
    )
    assert registered.returncode == 0, registered.stderr
    bad = await asyncio.to_thread(
        run_cli,
        "cloud",
        "register-gateway",
        "--dir",
        str(relay_dir),
        "--gateway-id",
        GATEWAY_ID,
        "--gateway-key",
        "not-a-key",
        "--owner-key",
        "x",
    )
    assert bad.returncode == 2
    server = RelayServer(Relay(relay_dir))
    url = await server.start()
    db = tmp_path / "gw.sqlite3"
    try:
        store = await open_sealed_store(db, parties)
        await append_many(store, 700)
        await store.close()
        status = await asyncio.to_thread(run_cli, "sync", "status", "--db", str(db))
        assert status.returncode == 0, status.stderr
        assert "backlog: 700 entries" in status.stdout
        key = write_key_file(tmp_path / "gateway.key", parties.gateway)
        now = await asyncio.to_thread(
            run_cli,
            "sync",
            "now",
            "--db",
            str(db),
            "--cloud",
            url,
            "--gateway-id",
            GATEWAY_ID,
            "--gateway-key",
            str(key),
            "--relay-key",
            b64u(server.relay.public_key),
        )
        assert now.returncode == 0, now.stderr
        assert "uploaded 700 entries" in now.stdout
        status = await asyncio.to_thread(run_cli, "sync", "status", "--db", str(db))
        assert "backlog: 0 entries (log 700, acknowledged 700)" in status.stdout
        assert "last error: none" in status.stdout
        store = await open_sealed_store(db, parties)
        await append_many(store, 1, start=700)
        await store.close()
        down = await asyncio.to_thread(
            run_cli,
            "sync",
            "now",
            "--db",
            str(db),
            "--cloud",
            "http://127.0.0.1:9",
            "--gateway-id",
            GATEWAY_ID,
            "--gateway-key",
            str(key),
        )
        assert down.returncode == 1
        assert "sync_unavailable" in down.stderr
        status = await asyncio.to_thread(run_cli, "sync", "status", "--db", str(db))
        assert "backlog: 1 entries" in status.stdout
        assert "last error: relay unreachable" in status.stdout
    finally:
        await server.stop()


async def test_relay_restored_from_an_old_backup_gets_the_log_again(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "cloud", parties, backend=relay_backend)
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    try:
        await append_many(store, 600)
        sync = sync_for(store, url, parties)
        assert await asyncio.wait_for(sync.upload_backlog(), 30) == 600
        await sync.stop()
        await server.stop()
        # The operator loses the relay's data: a fresh relay knows the gateway, holds nothing.
        server, url = await start_relay(tmp_path / "cloud-restored", parties, backend=relay_backend)
        await append_many(store, 50)
        sync = sync_for(store, url, parties)
        await asyncio.wait_for(sync.upload_backlog(), 30)
        await sync.stop()
        held = await server.relay.storage.entries(GATEWAY_ID, 0, 1000)
        assert [i for i, _ in held] == list(range(650))
        assert await store.acked_tree_size() == 650
    finally:
        await store.close()
        await server.stop()


async def test_sync_commands_read_the_gateway_config(tmp_path: Path) -> None:
    from gateway.app.provision import init_gateway

    parties = new_parties()
    result = await asyncio.to_thread(
        init_gateway, tmp_path / "gw", owner_pub=b64u(parties.owner_public), gateway_id="gw-cfg"
    )
    config = str(result.config_path)
    status = await asyncio.to_thread(run_cli, "sync", "status", "--config", config)
    assert status.returncode == 0, status.stderr
    assert "backlog: 1 entries" in status.stdout
    no_cloud = await asyncio.to_thread(run_cli, "sync", "now", "--config", config)
    assert no_cloud.returncode == 2
    relay = Relay(tmp_path / "cloud")
    gateway_public = base64.urlsafe_b64decode(result.public_key + "==")
    await relay.register_gateway("gw-cfg", gateway_public, parties.owner_public)
    server = RelayServer(relay)
    url = await server.start()
    try:
        # The template's [cloud] table shows url commented out: the owner uncomments it.
        text = result.config_path.read_text()
        assert '# url = "https://relay.example:8443"' in text
        result.config_path.write_text(
            text.replace('# url = "https://relay.example:8443"', f'url = "{url}"', 1)
        )
        now = await asyncio.to_thread(run_cli, "sync", "now", "--config", config)
        assert now.returncode == 0, now.stderr
        assert "uploaded 1 entries" in now.stdout
        assert await server.relay.storage.held_size("gw-cfg") == 1
    finally:
        await server.stop()


async def test_a_malformed_receipt_file_is_one_line_not_an_internal_error(tmp_path: Path) -> None:
    """Found by the fuzzing of the JSON readers: a receipt file nested past the parser's depth
    or holding a 5,000-digit number ended `courier receipts upload` in an internal error
    (exit 70). Each is now the usage error naming the file, before anything is sent."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    big = tmp_path / "big.json"
    big.write_text('{"index": ' + "9" * 5000 + "}")
    for path in (deep, big):
        result = await asyncio.to_thread(
            run_cli, "courier", "receipts", "upload", "--cloud", "https://127.0.0.1:9", str(path)
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"threshold: cannot read receipt {path}: receipt is not JSON\n"
