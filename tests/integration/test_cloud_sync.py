"""The sync client against the real relay on loopback, over real SQLite stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

from store import merkle
from tests.support.cloud import (
    GATEWAY_ID,
    append_many,
    new_parties,
    open_sealed_store,
    start_relay,
    sync_for,
)
from tests.support.relay_backend import RelayBackend


async def test_backlog_reaches_relay_intact_and_replay_is_noop(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "cloud", parties, backend=relay_backend)
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties)
    try:
        await append_many(store, 1234)
        sync = sync_for(store, url, parties, relay_key=server.relay.public_key)
        sent = await asyncio.wait_for(sync.upload_backlog(), 30)
        assert sent == 1234
        assert await store.acked_tree_size() == 1234
        storage = server.relay.storage
        held = await storage.entries(GATEWAY_ID, 0, 5000)
        assert [i for i, _ in held] == list(range(1234))
        local = await store.read(
            lambda c: c.execute("SELECT leaf_bytes FROM audit_entry ORDER BY idx").fetchall()
        )
        assert [bytes(r[0]) for r in local] == [sealed for _, sealed in held]
        assert merkle.MemoryTree(
            [merkle.leaf_hash(s) for _, s in held]
        ).root() == await store.root_at(1234)
        # A second round has nothing to send and changes nothing.
        assert await asyncio.wait_for(sync.upload_backlog(), 30) == 0
        assert await storage.held_size(GATEWAY_ID) == 1234
        assert await storage.alarms(GATEWAY_ID) == []
        await sync.stop()
    finally:
        await store.close()
        await server.stop()
