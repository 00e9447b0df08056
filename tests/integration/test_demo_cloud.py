"""The demo's cloud: deliveries while the link is cut, then the catch-up and the owner's view."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.demo.cloud import DemoCloud
from gateway.sync.task import CloudSync, SyncConfig
from tests.support.cloud import GATEWAY_ID, append_many, new_parties, open_sealed_store


async def test_offline_then_catch_up_then_owner_reads(tmp_path: Path) -> None:
    parties = new_parties()
    cloud = DemoCloud(tmp_path / "cloud")
    url = await cloud.start(GATEWAY_ID, parties.gateway_public, parties.owner_public)
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    caught_up = asyncio.Event()
    sync = CloudSync(
        store,
        SyncConfig(
            cloud_url=url,
            gateway_id=GATEWAY_ID,
            gateway_key=parties.gateway,
            interval_s=3600,
            probe_interval_s=0.05,
            min_retry_s=0.05,
        ),
        on_ack=lambda n: caught_up.set() if n >= 12 else None,
    )
    try:
        await sync.start()
        await asyncio.wait_for(sync.round_done.wait(), 10)
        await append_many(store, 12)
        sync.sync_now()
        sync.round_done.clear()
        await asyncio.wait_for(sync.round_done.wait(), 10)
        assert await cloud.held_size(GATEWAY_ID) == 0
        assert sync.status.last_error is not None
        cloud.unblock()
        await asyncio.wait_for(caught_up.wait(), 10)
        assert await cloud.held_size(GATEWAY_ID) == 12
        log, alarms = await cloud.owner_log(parties.owner, GATEWAY_ID)
        assert alarms == []
        assert log.problems == []
        assert [e.body["order"] for e in log.entries][-1] == "ORDER-00000011"
    finally:
        await sync.stop()
        await store.close()
        await cloud.stop()
