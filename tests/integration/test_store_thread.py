"""The store's connection threads: one hop per transaction, order kept, nothing left behind.

``store.sqlite_thread`` replaced aiosqlite's private ``_execute``; these pin what the store
relies on from it, over real SQLite files.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from store.errors import StoreError
from store.transaction import StoreTransaction
from tests.support.store import new_signer, open_store


def _store_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("threshold-store-")]


async def test_a_transaction_runs_whole_in_the_writer_thread(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "g.db", new_signer())
    try:
        seen: list[str] = []

        def two_appends(tx: StoreTransaction) -> int:
            seen.append(threading.current_thread().name)
            tx.append("session.requested", {})
            seen.append(threading.current_thread().name)
            tx.append("session.granted", {})
            return tx.tree_size

        assert await store.transact(two_appends) == 2
        reader = await store.read(lambda conn: threading.current_thread().name)
    finally:
        await store.close()
    assert seen == ["threshold-store-writer", "threshold-store-writer"]
    assert reader == "threshold-store-reader"


async def test_a_cancelled_caller_s_transaction_commits_whole_before_the_next(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path / "g.db", new_signer())
    try:
        entered = threading.Event()
        release = threading.Event()

        def slow(tx: StoreTransaction) -> None:
            tx.append("session.requested", {})
            entered.set()
            assert release.wait(10)
            tx.append("session.granted", {})

        task = asyncio.create_task(store.transact(slow))
        assert await asyncio.to_thread(entered.wait, 10)
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The next transaction queues behind the cancelled one, which still committed whole.
        after = await asyncio.wait_for(store.append("session.closed", {}), 10)
        assert after.entry.index == 2
        kinds = [(await store.entry(i)) for i in range(3)]
        assert [s.entry.kind for s in kinds if s is not None] == [
            "session.requested",
            "session.granted",
            "session.closed",
        ]
    finally:
        await store.close()


async def test_close_ends_both_threads(tmp_path: Path) -> None:
    before = set(_store_threads())
    store = await open_store(tmp_path / "g.db", new_signer())
    mine = [t for t in _store_threads() if t not in before]
    assert len(mine) == 2
    await store.append("gateway.started", {})
    await store.close()
    for thread in mine:
        await asyncio.to_thread(thread.join, 10)
        assert not thread.is_alive()


async def test_a_failed_open_is_typed_and_leaves_no_thread(tmp_path: Path) -> None:
    before = set(_store_threads())
    db = tmp_path / "g.db"
    db.write_bytes(b"this is not a database, it is a text file of some length" * 100)
    with pytest.raises(StoreError) as info:
        await open_store(db, new_signer())
    assert info.value.code == "storage_corrupt"
    for thread in set(_store_threads()) - before:
        await asyncio.to_thread(thread.join, 10)
        assert not thread.is_alive()
