"""The supervised sync task: it retries at once when the relay comes back, honours
Retry-After, and never holds the access path (appends go on while it is down)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from cloud.relay import Relay, RelayServer
from gateway.sync.task import CloudSync, SyncConfig
from tests.support.cloud import GATEWAY_ID, append_many, new_parties, open_sealed_store
from tests.support.fault_proxy import FaultPlan, FaultProxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_retries_at_once_when_the_relay_comes_back(tmp_path: Path) -> None:
    parties = new_parties()
    port = free_port()
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    acked = asyncio.Event()
    config = SyncConfig(
        cloud_url=f"http://127.0.0.1:{port}",
        gateway_id=GATEWAY_ID,
        gateway_key=parties.gateway,
        interval_s=3600,
        backoff_cap_s=3600,
        probe_interval_s=0.1,
        min_retry_s=0.1,
    )
    sync = CloudSync(store, config, on_ack=lambda n: acked.set() if n >= 40 else None)
    server: RelayServer | None = None
    try:
        await append_many(store, 10)
        await sync.start()
        # Down: the task backs off; appends (the access path) are not held up by it.
        for _ in range(3):
            await asyncio.wait_for(sync.round_done.wait(), 10)
            sync.round_done.clear()
            started = time.perf_counter()
            await append_many(store, 10)
            assert time.perf_counter() - started < 1.0
        assert sync.status.last_error is not None
        assert "unreachable" in sync.status.last_error
        relay = Relay(tmp_path / "cloud")
        await relay.register_gateway(GATEWAY_ID, parties.gateway_public, parties.owner_public)
        server = RelayServer(relay)
        await server.start(port=port)
        # Backoff could now be long (the cap is an hour); the probe sees the relay at once.
        await asyncio.wait_for(acked.wait(), 10)
        assert await store.acked_tree_size() == 40
    finally:
        await sync.stop()
        await store.close()
        if server is not None:
            await server.stop()


async def test_honours_retry_after(tmp_path: Path) -> None:
    parties = new_parties()
    relay = Relay(tmp_path / "cloud")
    await relay.register_gateway(GATEWAY_ID, parties.gateway_public, parties.owner_public)
    server = RelayServer(relay)
    await server.start()
    proxy = FaultProxy(server.port, FaultPlan(weights={"e503": 1.0}))
    url = await proxy.start()
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    config = SyncConfig(
        cloud_url=url,
        gateway_id=GATEWAY_ID,
        gateway_key=parties.gateway,
        backoff_cap_s=0.01,
        probe_interval_s=0.01,
        min_retry_s=0.01,
    )
    sync = CloudSync(store, config)
    try:
        await append_many(store, 5)
        proxy.retry_after = "2"
        await sync.start()
        await asyncio.wait_for(sync.round_done.wait(), 10)
        status = sync.status
        assert status.last_error == "relay answered 503"
        assert status.next_attempt_ms is not None
        assert status.last_error_ms is not None
        assert status.next_attempt_ms - status.last_error_ms >= 2000
        sync.round_done.clear()
        # Within the two seconds nothing else is tried, although the backoff cap is 10 ms.
        await asyncio.sleep(0.5)
        assert proxy.fates["e503"] == 1
        proxy.plan.weights = {"pass": 1.0}
        await asyncio.wait_for(sync.round_done.wait(), 10)
        assert await store.acked_tree_size() == 5
        assert proxy.fates["e503"] == 1
    finally:
        await sync.stop()
        await store.close()
        await proxy.stop()
        await server.stop()
