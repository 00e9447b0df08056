"""Benchmark: a gateway catching up a sealed backlog against the reference relay on loopback.

Prints one JSON line:

- ``backlog_entries``: sealed entries waiting when sync starts (default 100,000);
- ``catchup_s`` and ``entries_per_s``: from the first upload until the relay has acknowledged
  the whole backlog (target >= 5,000 entries/s);
- ``reference_post_entries_per_s``: the same batch bodies POSTed in the same run to a bare
  aiohttp handler that only reads them (no checks, no storage), and ``vs_reference``, the
  ratio: what verification, storage and the gateway's bookkeeping cost over raw HTTP;
- ``gateway_peak_rss_mb``: peak RSS of the gateway process doing the catch-up (target <= 200);
- ``wire_bytes_per_entry`` (request bodies and signed headers) against
  ``plain_bytes_per_entry`` (the canonical, unsealed entry): sealing and padding overhead;
- ``relay_ingest_cpu_s``: CPU seconds the relay process used for the whole catch-up.

The relay runs as ``threshold cloud run`` in its own process, the gateway's catch-up in
another (``--child``), so each figure belongs to one side.

    .venv/bin/python bench/sync.py                      # 100,000 entries, about a minute
    .venv/bin/python bench/sync.py --entries 2000       # smoke size
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == _REPO / "bench":
    sys.path[0] = str(_REPO)

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

from cloud import wire  # noqa: E402
from cloud.relay import Relay  # noqa: E402
from gateway.sync.task import CloudSync, SyncConfig  # noqa: E402
from gateway.trust.seal import Sealer  # noqa: E402
from store.checkpoint import CheckpointSigner  # noqa: E402
from store.db import Store  # noqa: E402
from store.entry import AuditEntry, canonical_bytes  # noqa: E402
from tests.support.memory import peak_rss_mb  # noqa: E402

GATEWAY_ID = "gw-bench"


def body_for(n: int) -> dict[str, Any]:
    return {
        "door": "front",
        "holder": f"Courier {n % 977}",
        "order": f"ORDER-{n:010d}",
        "purpose": "delivery",
        "ticket": "01J9Z3Q8W6XK2M4N5P7R8S9T0V",
    }


async def build_backlog(db: Path, gateway: SigningKey, owner_public: bytes, count: int) -> float:
    store = await Store.open(
        db, signer=CheckpointSigner(gateway, GATEWAY_ID), seal=Sealer(owner_public)
    )
    plain = 0
    try:
        for first in range(0, count, 2000):
            chunk = range(first, min(count, first + 2000))

            def write(tx: Any, chunk: range = chunk) -> None:
                for n in chunk:
                    tx.append("session.granted", body_for(n), 1_790_000_000_000 + n)

            await store.transact(write)
        for n in range(min(count, 1000)):
            plain += len(
                canonical_bytes(
                    AuditEntry(n, 1_790_000_000_000 + n, "session.granted", body_for(n))
                )
            )
    finally:
        await store.close()
    return plain / min(count, 1000)


class CountingSync(CloudSync):
    wire_bytes = 0

    async def _request(
        self, method: str, path: str, body: bytes = b"", content_type: str | None = None
    ) -> tuple[int, Any]:
        # Body, request line and the four signature headers, as sent.
        CountingSync.wire_bytes += len(body) + len(path) + 300
        return await super()._request(method, path, body, content_type)


async def child(config: dict[str, Any]) -> None:
    gateway = SigningKey(base64.b64decode(config["gateway_seed"]))
    store = await Store.open(Path(config["db"]), signer=CheckpointSigner(gateway, GATEWAY_ID))
    sync = CountingSync(
        store, SyncConfig(cloud_url=config["cloud"], gateway_id=GATEWAY_ID, gateway_key=gateway)
    )
    started = time.perf_counter()
    sent = await sync.upload_backlog()
    elapsed = time.perf_counter() - started
    await sync.stop()
    await store.close()
    print(
        json.dumps(
            {
                "sent": sent,
                "catchup_s": elapsed,
                "wire_bytes": CountingSync.wire_bytes,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


async def reference_post(db: Path, entries: int) -> float:
    """Entries/s for the same batch bodies POSTed to a handler that only reads them."""
    import sqlite3

    async def sink(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/sink", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    conn = sqlite3.connect(db)
    sent = 0
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession() as session:
            while sent < entries:
                rows = conn.execute(
                    "SELECT leaf_bytes FROM audit_entry WHERE idx >= ? AND idx < ? ORDER BY idx",
                    (sent, sent + wire.MAX_BATCH_ENTRIES),
                ).fetchall()
                body = b"".join(bytes(r[0]) for r in rows)
                async with session.post(f"http://127.0.0.1:{port}/sink", data=body) as response:
                    await response.read()
                sent += len(rows)
    finally:
        conn.close()
        await runner.cleanup()
    return sent / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(json.loads(args.child)))
        return
    with tempfile.TemporaryDirectory(prefix="threshold-bench-sync-") as tmp:
        root = Path(tmp)
        gateway, owner = SigningKey(os.urandom(32)), SigningKey(os.urandom(32))
        db = root / "gateway.sqlite3"
        plain = asyncio.run(build_backlog(db, gateway, bytes(owner.verify_key), args.entries))

        async def register() -> None:
            relay = Relay(root / "cloud")
            await relay.register_gateway(
                GATEWAY_ID, bytes(gateway.verify_key), bytes(owner.verify_key)
            )
            await relay.close()

        asyncio.run(register())
        port = free_port()
        relay = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "cloud",
                "run",
                "--dir",
                str(root / "cloud"),
                "--bind",
                f"127.0.0.1:{port}",
                "--seconds",
                "3600",
            ],
            cwd=_REPO,
            stdout=subprocess.PIPE,
        )
        try:
            assert relay.stdout is not None
            relay.stdout.readline()
            config = {
                "gateway_seed": base64.b64encode(bytes(gateway)).decode(),
                "db": str(db),
                "cloud": f"http://127.0.0.1:{port}",
            }
            out = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(config)],
                cwd=_REPO,
                capture_output=True,
                text=True,
                check=True,
                timeout=3600,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            relay.send_signal(signal.SIGTERM)
            _, _, usage = os.wait4(relay.pid, 0)
        reference = asyncio.run(reference_post(db, args.entries))
    entries_per_s = result["sent"] / result["catchup_s"]
    print(
        json.dumps(
            {
                "backlog_entries": args.entries,
                "uploaded": result["sent"],
                "catchup_s": round(result["catchup_s"], 3),
                "entries_per_s": round(entries_per_s),
                "reference_post_entries_per_s": round(reference),
                "vs_reference": round(entries_per_s / reference, 3),
                "gateway_peak_rss_mb": round(result["peak_rss_mb"], 1),
                "wire_bytes_per_entry": round(result["wire_bytes"] / max(1, result["sent"]), 1),
                "plain_bytes_per_entry": round(plain, 1),
                "relay_ingest_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
