"""``audit verify`` over several processes (``verify_log(workers=...)``) makes the same checks
and names the same first bad index and field as the single-process scan, on a real sealed
SQLite log: untouched, and after each kind of tampering the scan catches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from gateway.trust.seal import Sealer
from store import commitment_key, verify
from store.transaction import StoreTransaction
from tests.support.store import new_signer, open_store

ENTRIES = 3000


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    path = tmp_path_factory.mktemp("parallel") / "log.db"

    async def build() -> None:
        seal = Sealer(bytes(SigningKey.generate().verify_key))
        store = await open_store(path, new_signer(), checkpoint_every=256, seal=seal)
        try:

            def batch(tx: StoreTransaction, start: int) -> None:
                for i in range(start, min(start + 500, ENTRIES)):
                    if i % 400 == 7:
                        body = {"path": f"/clips/{i}.mp4", "sha256": "ab" * 32, "size_bytes": i}
                        tx.append("clip.recorded", body)
                    elif i % 800 == 9:
                        body2 = {"recorded_entry": i - 2}
                        tx.append("clip.deleted", body2)
                    else:
                        tx.append("session.granted", {"door": "front", "n": i})

            for start in range(0, ENTRIES, 500):
                await store.transact(lambda tx, start=start: batch(tx, start))
            await store.checkpoint()
        finally:
            await store.close()

    asyncio.run(build())
    return path


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 3,000-entry log split as a million-entry one is: ranges of 256 over two processes.
    monkeypatch.setattr(verify, "PARALLEL_FROM", 1)
    monkeypatch.setattr(verify, "_MIN_RANGE_BITS", 8)


def _copy(log: Path, tmp_path: Path) -> Path:
    target = tmp_path / "log.db"
    source = sqlite3.connect(log)
    dest = sqlite3.connect(target)
    source.backup(dest)
    source.close()
    dest.close()
    key_file = Path(str(log) + ".audit-key")
    copied = Path(str(target) + ".audit-key")
    copied.write_bytes(key_file.read_bytes())
    copied.chmod(0o600)
    return target


def _as_thief(db: Path) -> sqlite3.Connection:
    """A plain connection with the append-only triggers dropped: no key, no tool."""
    conn = sqlite3.connect(db)
    for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def _both(path: Path) -> tuple[dict[str, object], dict[str, object]]:
    reports = []
    for workers in (1, 2):
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            reports.append(verify.verify_log(conn, clip_files=False, workers=workers).to_json())
        finally:
            conn.close()
    return reports[0], reports[1]


def test_an_untouched_log_verifies_the_same_in_several_processes(
    log: Path, small_ranges: None
) -> None:
    one, two = _both(log)
    assert one == two
    assert one["ok"] is True
    assert one["entries"] == ENTRIES
    assert one["clips"] == 4  # eight recorded, four of them deleted
    # and the parallel scan really ran (it falls back to one process only when it cannot)
    conn = sqlite3.connect(log.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        key = commitment_key.for_reading(conn, log, None)[0]
        scan = verify._parallel_scan(conn, log, key, 0, None, 2)
        alone = verify._scan_entries(conn, key, 0)
    finally:
        conn.close()
    assert scan is not None
    assert scan.tree.root() == alone.tree.root()
    for level in range(alone.tree.height):
        assert scan.tree.level_bytes(level) == alone.tree.level_bytes(level)
    assert (scan.recorded, scan.deleted) == (alone.recorded, alone.deleted)


@pytest.mark.parametrize(
    ("edits", "index", "field"),
    [
        # two edits in different ranges: the first one is named
        (
            [
                'UPDATE audit_entry SET body = \'{"door":"back","n":2500}\' WHERE idx = 2500',
                "UPDATE audit_entry SET kind = 'session.denied' WHERE idx = 700",
            ],
            700,
            "kind",
        ),
        (["UPDATE audit_entry SET time_ms = time_ms + 1 WHERE idx = 2999"], 2999, "time_ms"),
        (["UPDATE audit_entry SET leaf_hash = zeroblob(32) WHERE idx = 1800"], 1800, "leaf_hash"),
        (["UPDATE audit_entry SET sealed = 0 WHERE idx = 256"], 256, "sealed"),
        (["DELETE FROM audit_entry WHERE idx = 1000"], 1000, "index"),
        (
            [
                'UPDATE audit_entry SET body = \'{"path":"/clips/x.mp4","sha256":"'
                + "cd" * 32
                + '","size_bytes":807}\' WHERE idx = 807'
            ],
            807,
            "body",
        ),
    ],
)
def test_tampering_is_named_the_same_in_several_processes(
    log: Path, tmp_path: Path, small_ranges: None, edits: list[str], index: int, field: str
) -> None:
    path = _copy(log, tmp_path)
    conn = _as_thief(path)
    for edit in edits:
        conn.execute(edit)
    conn.commit()
    conn.close()
    one, two = _both(path)
    assert one == two
    assert one["ok"] is False
    assert (one["first_bad_index"], one["field"]) == (index, field)


def test_a_changed_tree_node_is_found_in_several_processes(
    log: Path, tmp_path: Path, small_ranges: None
) -> None:
    path = _copy(log, tmp_path)
    conn = _as_thief(path)
    conn.execute("UPDATE merkle_node SET hash = zeroblob(32) WHERE level = 3 AND idx = 200")
    conn.commit()
    conn.close()
    one, two = _both(path)
    assert one == two
    assert one["first_bad_index"] == 200 << 3
    assert "tree node level 3 index 200" in str(one["problem"])


def test_the_cli_takes_jobs_and_refuses_a_bad_count(log: Path) -> None:
    from tests.support.cli import run_cli

    reports = []
    for jobs in ("1", "2"):
        result = run_cli("audit", "verify", "--db", str(log), "--no-clip-files", "--jobs", jobs)
        assert result.returncode == 0, result.stderr
        reports.append(result.stdout)
    assert reports[0] == reports[1]
    result = run_cli("audit", "verify", "--db", str(log), "--jobs", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == "threshold: --jobs must be 1 to 64"


def test_a_damaged_file_is_reported_as_damaged_in_one_process_and_several(
    log: Path, tmp_path: Path, small_ranges: None
) -> None:
    """The file's own check (PRAGMA quick_check) runs beside the scan now: a damaged page is
    still reported as damage, not as whatever the scan made of it."""
    path = _copy(log, tmp_path)
    data = bytearray(path.read_bytes())
    data[40 * 4096] = 0x07  # no b-tree page has this type
    path.write_bytes(bytes(data))
    one, two = _both(path)
    assert one == two
    assert one["ok"] is False
    assert str(one["problem"]).startswith("database damaged: ")
