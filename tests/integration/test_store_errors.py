"""Storage failures become one typed StoreError each, and the process always exits."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from store.commitment_key import key_path
from store.db import Store
from store.errors import StorageCorrupt, StorageLocked, StoreError
from tests.support.cli import REPO
from tests.support.store import new_signer, open_store

_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from store.db import Store
    from store.errors import StoreError

    async def main() -> None:
        try:
            store = await Store.open(sys.argv[1])
            try:
                await store.append("lock.unlocked", {})
            finally:
                await store.close()
            print("written")
        except StoreError as exc:
            print(exc.code)

    asyncio.run(main())
    """
)


def _run_child(db: Path, *, as_nobody: bool) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if as_nobody:
        # Root ignores file modes, so the child drops to an unprivileged user.
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run(
        [*prefix, sys.executable, "-c", _CHILD, str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def _make_log(db: Path) -> None:
    store = await open_store(db, new_signer())
    await store.append("session.requested", {})
    await store.close()


def test_read_only_file() -> None:
    # Outside pytest's private (0700) tmp tree, so the unprivileged child can reach the file.
    with tempfile.TemporaryDirectory(prefix="threshold-ro-", dir="/tmp") as name:
        _check_read_only(Path(name))


def _check_read_only(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    asyncio.run(_make_log(db))
    db.chmod(0o444)
    if os.geteuid() == 0:
        # The gateway's own user owns its commitment key (0600); the child plays that user.
        os.chown(key_path(db), 65534, 65534)
    tmp_path.chmod(0o777)  # the -wal and -shm files may be created; the database may not change
    result = _run_child(db, as_nobody=os.geteuid() == 0)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "storage_read_only"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM audit_entry").fetchone()[0] == 1
    conn.close()


async def test_locked_database(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store = await Store.open(db, signer=new_signer(), busy_timeout_ms=100)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StorageLocked) as info:
            await store.append("session.requested", {})
        assert info.value.code == "storage_locked"
        other.execute("ROLLBACK")
        assert store.tree_size == 0
        assert (await store.append("session.requested", {})).entry.index == 0
    finally:
        other.close()
        await store.close()


async def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    db.write_bytes(os.urandom(8192))
    with pytest.raises(StorageCorrupt) as info:
        await Store.open(db, signer=new_signer())
    assert info.value.code == "storage_corrupt"


async def test_damaged_pages_are_reported_not_misread(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store = await open_store(db, new_signer())
    for i in range(300):
        await store.append("session.requested", {"pad": "x" * 200, "n": i})
    await store.close()
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(page * 3, len(data) - page, page * 2):
        data[offset + 10 : offset + 200] = os.urandom(190)
    db.write_bytes(bytes(data))

    async def read_everything_and_append() -> None:
        store = await open_store(db, new_signer())
        try:
            for i in range(300):
                await store.entry(i)
            await store.append("session.requested", {})
        finally:
            await store.close()

    with pytest.raises(StoreError) as info:
        await read_everything_and_append()
    assert info.value.code == "storage_corrupt"


def test_a_process_using_the_store_exits(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from store.db import Store

        async def main() -> None:
            store = await Store.open(sys.argv[1])
            await store.append("gateway.started", {})
            await store.read(lambda conn: conn.execute("SELECT 1").fetchone())
            await store.close()
            await store.close()  # closing twice is harmless
            print("closed")

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "g.db")],
        capture_output=True,
        text=True,
        timeout=30,  # a store thread that outlived close() would hang here
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "closed"


async def test_using_a_closed_store_is_a_typed_error(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "g.db", new_signer())
    await store.close()
    with pytest.raises(StoreError) as info:
        await store.append("session.requested", {})
    assert info.value.code == "store_closed"
