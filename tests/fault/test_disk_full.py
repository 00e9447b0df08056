"""A full disk (SQLite's max_page_count as the quota): a typed error, nothing lost, recovery."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.errors import StorageFull
from store.verify import verify_log
from tests.support.store import new_signer, open_store


async def test_disk_full_is_typed_loses_nothing_and_recovers(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store = await open_store(db, new_signer(), checkpoint_every=8)
    try:
        written: list[int] = []
        for i in range(20):
            written.append((await store.append("session.requested", {"n": i})).entry.index)
        pages = await store.read(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        assert await store.set_page_limit(pages + 3) == pages + 3

        codes: list[str] = []
        for i in range(20, 2000):
            try:
                stored = await store.append("session.requested", {"n": i, "pad": "x" * 300})
            except StorageFull as exc:
                codes.append(exc.code)
                if len(codes) == 3:  # it stays full, and says so each time
                    break
                continue
            written.append(stored.entry.index)
        assert codes == ["storage_full"] * 3
        assert written == list(range(len(written)))  # every reported index, in order, no gaps
        assert store.tree_size == len(written)
        for index in written:
            assert await store.entry(index) is not None
        assert await store.entry(len(written)) is None  # nothing half-written

        await store.set_page_limit(1_000_000)
        resumed = await store.append("storage.recovered", {})
        assert resumed.entry.index == len(written)
        await store.checkpoint()
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    report = verify_log(conn)
    assert report.ok, report
    conn.close()


async def test_state_writes_fail_closed_when_full(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "g.db", new_signer())
    try:
        pages = await store.read(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        await store.set_page_limit(pages)

        async def fill() -> None:
            for i in range(500):
                await store.issue_challenge(10_000, bound_to=f"ticket-{i}" * 20)

        with pytest.raises(StorageFull):
            await fill()
    finally:
        await store.close()
