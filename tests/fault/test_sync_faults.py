"""Sync under faults: a chaotic network, a relay restarted mid-sync, a gateway SIGKILLed.

The default sizes keep the run short; ``THRESHOLD_CHAOS_ENTRIES`` scales the chaos run up
(it never goes below the 10,000 entries the claim is about).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path

from cloud.relay import Relay, RelayServer
from cloud.storage import open_storage
from store import merkle
from tests.support.cloud import GATEWAY_ID, Parties, new_parties
from tests.support.fault_proxy import FaultProxy
from tests.support.relay_backend import RelayBackend

REPO = Path(__file__).resolve().parents[2]
CHAOS_ENTRIES = max(10_000, int(os.environ.get("THRESHOLD_CHAOS_ENTRIES", "10000")))
WAIT_S = 240.0


class Worker:
    """A gateway process (tests/support/sync_worker.py) and the lines it prints."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.acked = 0
        self.start_acked: int | None = None
        self.result: dict[str, object] | None = None

    @classmethod
    async def launch(cls, parties: Parties, db: Path, cloud: str, total: int) -> Worker:
        config = {
            "gateway_seed": base64.b64encode(bytes(parties.gateway)).decode(),
            "owner_public": base64.b64encode(parties.owner_public).decode(),
            "gateway_id": GATEWAY_ID,
            "db": str(db),
            "cloud": cloud,
            "total": total,
            "timeout_s": WAIT_S,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.sync_worker",
            json.dumps(config),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def until(self, predicate: object) -> bool:
        """Read lines until ``predicate(self)`` holds (True) or the process ends (False)."""
        assert self.proc.stdout is not None
        check = predicate  # a callable taking the worker
        while not check(self):  # type: ignore[operator]
            line = await asyncio.wait_for(self.proc.stdout.readline(), WAIT_S)
            if not line:
                return False
            text = line.decode().strip()
            if text.startswith("acked "):
                self.acked = max(self.acked, int(text.split()[1]))
            elif text.startswith("start "):
                self.start_acked = int(text.split()[1])
            elif text.startswith("done "):
                self.result = json.loads(text[5:])
        return True

    async def finish(self) -> dict[str, object]:
        await self.until(lambda w: w.result is not None)
        assert await asyncio.wait_for(self.proc.wait(), WAIT_S) == 0
        assert self.result is not None
        return self.result

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), WAIT_S)


async def assert_relay_holds_exactly(
    relay_dir: Path,
    gateway_db: Path,
    total: int,
    backend: RelayBackend | None = None,
    gateway_id: str = GATEWAY_ID,
) -> None:
    config = None if backend is None else backend.config(relay_dir)
    storage = await open_storage(config or RelayBackend("sqlite").config(relay_dir))
    try:
        held = await storage.entries(gateway_id, 0, total + 10)
        assert [i for i, _ in held] == list(range(total))
        conn = sqlite3.connect(gateway_db)
        local = [
            bytes(r[0]) for r in conn.execute("SELECT leaf_bytes FROM audit_entry ORDER BY idx")
        ]
        conn.close()
        assert local == [sealed for _, sealed in held]
        assert await storage.held_size(gateway_id) == total
        root = merkle.MemoryTree([merkle.leaf_hash(s) for _, s in held]).root()
        finals = [
            w
            for w in await storage.witnessed(gateway_id)
            if w.checkpoint.checkpoint.tree_size == total
        ]
        assert finals
        assert finals[0].checkpoint.checkpoint.root_hash == root
        assert finals[0].cosignature is not None
        assert await storage.alarms(gateway_id) == []
    finally:
        await storage.close()


async def start_inprocess_relay(
    directory: Path, parties: Parties, backend: RelayBackend | None = None
) -> RelayServer:
    relay = Relay(directory, storage=None if backend is None else backend.config(directory))
    await relay.register_gateway(GATEWAY_ID, parties.gateway_public, parties.owner_public)
    server = RelayServer(relay)
    await server.start()
    return server


async def test_chaos_network_delivers_every_entry_exactly_once(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server = await start_inprocess_relay(tmp_path / "cloud", parties, relay_backend)
    proxy = FaultProxy(server.port)
    url = await proxy.start()
    db = tmp_path / "gw.sqlite3"
    try:
        worker = await Worker.launch(parties, db, url, CHAOS_ENTRIES)
        assert await worker.until(lambda w: w.acked >= CHAOS_ENTRIES // 3)
        proxy.down_for(1.0)
        result = await worker.finish()
    finally:
        await proxy.stop()
        await server.stop()
    assert proxy.fates["cut_request"]
    assert proxy.fates["cut_response"]
    assert proxy.fates["e503"]
    assert proxy.fates["dup_first"] + proxy.fates["dup_second"] > 0
    assert proxy.fates["down"] > 0
    await assert_relay_holds_exactly(tmp_path / "cloud", db, CHAOS_ENTRIES, relay_backend)
    assert float(str(result["peak_rss_mb"])) < 150


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _relay_process(directory: Path, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "cloud",
        "run",
        "--dir",
        str(directory),
        "--bind",
        f"127.0.0.1:{port}",
        "--seconds",
        str(WAIT_S),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert b"listening on" in line
    return proc


async def test_relay_restarted_mid_sync_loses_and_duplicates_nothing(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    relay_dir = tmp_path / "cloud"
    relay_dir.mkdir()
    relay_backend.write_config(relay_dir)  # the relay process reads relay.toml
    registrar = Relay(relay_dir)
    await registrar.register_gateway(GATEWAY_ID, parties.gateway_public, parties.owner_public)
    await registrar.close()
    port = _free_port()
    relay = await _relay_process(relay_dir, port)
    db = tmp_path / "gw.sqlite3"
    total = 4000
    worker = await Worker.launch(parties, db, f"http://127.0.0.1:{port}", total)
    try:
        assert await worker.until(lambda w: w.acked >= 1000)
        relay.send_signal(signal.SIGKILL)
        await asyncio.wait_for(relay.wait(), 30)
        relay = await _relay_process(relay_dir, port)
        await worker.finish()
    finally:
        if worker.proc.returncode is None:
            await worker.kill()
        relay.send_signal(signal.SIGTERM)
        await asyncio.wait_for(relay.wait(), 30)
    await assert_relay_holds_exactly(relay_dir, db, total, relay_backend)


async def test_gateway_killed_mid_sync_resumes_from_the_acknowledged_size(tmp_path: Path) -> None:
    parties = new_parties()
    server = await start_inprocess_relay(tmp_path / "cloud", parties)
    url = f"http://127.0.0.1:{server.port}"
    db = tmp_path / "gw.sqlite3"
    total = 4000
    try:
        first = await Worker.launch(parties, db, url, total)
        assert await first.until(lambda w: w.acked >= 1000)
        await first.kill()
        acked_before = first.acked
        second = await Worker.launch(parties, db, url, total)
        await second.until(lambda w: w.start_acked is not None)
        assert second.start_acked is not None
        assert second.start_acked >= acked_before
        await second.finish()
    finally:
        await server.stop()
    await assert_relay_holds_exactly(tmp_path / "cloud", db, total)
