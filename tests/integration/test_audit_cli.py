"""``threshold audit``: verification catches tampering as a thief would do it, export proves
each entry, tail prints and follows, checkpoint signs with the gateway key file."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import select
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from store import merkle
from store.checkpoint import CheckpointSigner
from tests.support.cli import REPO, run_cli
from tests.support.store import b64, new_signer, open_store

ENTRIES = 40


async def _build(db: Path, signer: CheckpointSigner) -> None:
    store = await open_store(db, signer, checkpoint_every=8)
    try:
        for i in range(ENTRIES):
            await store.append("session.requested", {"door": "front", "n": i})
        await store.checkpoint()
    finally:
        await store.close()


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    return new_signer()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, signer: CheckpointSigner) -> Path:
    db = tmp_path_factory.mktemp("pristine") / "g.db"
    asyncio.run(_build(db, signer))
    return db


@pytest.fixture
def db(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "g.db"
    shutil.copyfile(pristine, copy)
    key = pristine.with_name("g.db.audit-key")
    shutil.copy2(key, copy.with_name(key.name))
    return copy


def _as_thief(db: Path) -> sqlite3.Connection:
    """A plain connection with the append-only triggers dropped."""
    conn = sqlite3.connect(db, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def _verify(db: Path, *extra: str) -> tuple[int, dict[str, object]]:
    result = run_cli("audit", "verify", "--db", str(db), *extra)
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


def test_verify_passes_on_an_untouched_log(db: Path, signer: CheckpointSigner) -> None:
    code, report = _verify(db, "--gateway-pub", b64(signer.public_key))
    assert code == 0
    assert report == {
        "ok": True,
        "entries": ENTRIES,
        "checkpoints": 5,
        "unattested_entries": 0,
        "unchecked_plaintext": 0,
        "clips": 0,
    }


def _flip_byte(value: bytes, position: int) -> bytes:
    return value[:position] + bytes([value[position] ^ 0x20]) + value[position + 1 :]


@pytest.mark.parametrize("index", [0, 17, ENTRIES - 1])
@pytest.mark.parametrize("column", ["body", "leaf_bytes", "leaf_hash", "kind"])
def test_one_changed_byte_is_named_by_index(db: Path, index: int, column: str) -> None:
    conn = _as_thief(db)
    (value,) = conn.execute(f"SELECT {column} FROM audit_entry WHERE idx = ?", (index,)).fetchone()
    if isinstance(value, str):
        changed: str | bytes = _flip_byte(value.encode(), len(value) // 2).decode()
    else:
        changed = _flip_byte(bytes(value), len(value) // 2)
    conn.execute(f"UPDATE audit_entry SET {column} = ? WHERE idx = ?", (changed, index))
    conn.close()
    code, report = _verify(db)
    assert code == 1
    assert report["ok"] is False
    assert report["first_bad_index"] == index, report
    assert isinstance(report["problem"], str)


def test_a_thorough_rewrite_is_caught_by_the_checkpoints(db: Path) -> None:
    # The thief re-hashes the leaf and every tree node; only the signatures stand in the way.
    conn = _as_thief(db)
    body = {"door": "front", "n": 999}
    from store.entry import AuditEntry, canonical_body, canonical_bytes

    (time_ms,) = conn.execute("SELECT time_ms FROM audit_entry WHERE idx = 20").fetchone()
    leaf = canonical_bytes(AuditEntry(20, time_ms, "session.requested", body))
    conn.execute(
        "UPDATE audit_entry SET body = ?, leaf_bytes = ?, leaf_hash = ? WHERE idx = 20",
        (canonical_body(body).decode(), leaf, merkle.leaf_hash(leaf)),
    )
    leaves = [bytes(h) for (h,) in conn.execute("SELECT leaf_hash FROM audit_entry ORDER BY idx")]
    tree = merkle.MemoryTree(leaves)
    conn.execute("DELETE FROM merkle_node")
    for level in range(1, tree.height):
        for idx in range(tree.level_size(level)):
            conn.execute(
                "INSERT INTO merkle_node VALUES (?, ?, ?)", (level, idx, tree.node(level, idx))
            )
    conn.close()
    code, report = _verify(db)
    assert code == 1
    assert report["problem"] == "checkpoint at size 24: root differs from the entries"
    assert report["first_bad_index"] == 16  # entries up to the last good checkpoint stand


def test_a_missing_entry_is_named(db: Path) -> None:
    conn = _as_thief(db)
    conn.execute("DELETE FROM audit_entry WHERE idx = 12")
    conn.close()
    code, report = _verify(db)
    assert code == 1
    assert report["first_bad_index"] == 12
    assert report["problem"] == "entry 12 is missing"


def test_truncation_with_old_checkpoints_kept_is_caught(db: Path) -> None:
    conn = _as_thief(db)
    conn.execute("DELETE FROM audit_entry WHERE idx >= 35")
    conn.close()
    code, report = _verify(db)
    assert code == 1
    assert report["first_bad_index"] == 35


def test_truncation_resigned_with_another_key_needs_the_real_key(
    db: Path, signer: CheckpointSigner
) -> None:
    keep = ENTRIES - 5
    thief = CheckpointSigner(SigningKey.generate(), signer.origin)
    conn = _as_thief(db)
    conn.execute("DELETE FROM audit_entry WHERE idx >= ?", (keep,))
    leaves = [bytes(h) for (h,) in conn.execute("SELECT leaf_hash FROM audit_entry ORDER BY idx")]
    tree = merkle.MemoryTree(leaves)
    conn.execute("DELETE FROM merkle_node")
    for level in range(1, tree.height):
        for idx in range(tree.level_size(level)):
            conn.execute(
                "INSERT INTO merkle_node VALUES (?, ?, ?)", (level, idx, tree.node(level, idx))
            )
    sizes = [s for (s,) in conn.execute("SELECT tree_size FROM checkpoint") if s <= keep]
    conn.execute("DELETE FROM checkpoint")
    for size in [*sizes, keep]:
        forged = thief.sign(size, merkle.root_at(tree, size), 1)
        conn.execute(
            "INSERT OR IGNORE INTO checkpoint VALUES (?, ?, ?, ?, ?, ?)",
            (
                size,
                1,
                forged.checkpoint.origin,
                forged.checkpoint.root_hash,
                forged.signature,
                forged.key_id,
            ),
        )
    conn.execute("UPDATE gateway_identity SET public_key = ?", (thief.public_key,))
    conn.close()

    code, report = _verify(db)
    assert code == 0, report  # the database alone cannot tell: it vouches for itself
    code, report = _verify(db, "--gateway-pub", b64(signer.public_key))
    assert code == 1
    assert report["ok"] is False
    assert "bad gateway signature" in str(report["problem"])
    assert report["first_bad_index"] == 0


def test_export_proves_every_entry(db: Path, signer: CheckpointSigner) -> None:
    async def add_unattested() -> None:
        store = await open_store(db, signer, checkpoint_every=0)
        try:
            await store.append("lock.locked", {})
        finally:
            await store.close()

    asyncio.run(add_unattested())
    result = run_cli("audit", "export", "--db", str(db), "--since", "3")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    head, entries = records[0], records[1:]
    assert head["type"] == "checkpoint"
    assert base64.b64decode(head["public_key"]) == signer.public_key
    assert [e["index"] for e in entries] == list(range(3, ENTRIES + 1))
    root = base64.b64decode(head["root_hash"])
    for record in entries[:-1]:
        leaf = merkle.leaf_hash(base64.b64decode(record["leaf_bytes"]))
        proof = [base64.b64decode(p) for p in record["inclusion_proof"]]
        assert merkle.verify_inclusion(leaf, record["index"], head["tree_size"], proof, root)
    assert entries[-1]["inclusion_proof"] is None  # not yet covered by a checkpoint


def test_tail_prints_and_follows(db: Path, signer: CheckpointSigner) -> None:
    result = run_cli("audit", "tail", "--db", str(db), "-n", "2")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[0] == str(ENTRIES - 2)
    assert "session.requested" in lines[1]

    follower = subprocess.Popen(
        [sys.executable, "-m", "gateway", "audit", "tail", "--db", str(db), "-n", "1", "--follow"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], 20)
        assert ready, "tail --follow printed nothing within 20 s"
        assert follower.stdout.readline().split()[0] == str(ENTRIES - 1)

        async def append() -> None:
            store = await open_store(db, signer)
            try:
                await store.append("lock.unlocked", {"door": "front"})
            finally:
                await store.close()

        asyncio.run(append())
        ready, _, _ = select.select([follower.stdout], [], [], 20)
        assert ready, "tail --follow printed nothing within 20 s"
        line = follower.stdout.readline()
        assert line.split()[0] == str(ENTRIES)
        assert "lock.unlocked" in line
    finally:
        follower.kill()
        follower.wait(timeout=10)


def _key_file(path: Path, secret: bytes, mode: int = 0o600) -> Path:
    path.write_text(base64.urlsafe_b64encode(secret).decode().rstrip("=") + "\n")
    path.chmod(mode)
    return path


def test_checkpoint_command_with_both_key_forms(tmp_path: Path) -> None:
    key = SigningKey.generate()
    db = tmp_path / "new.db"
    seed_file = _key_file(tmp_path / "seed.key", bytes(key))
    full_file = _key_file(tmp_path / "full.key", bytes(key) + bytes(key.verify_key))

    result = run_cli("audit", "checkpoint", "--db", str(db), "--key", str(seed_file))
    assert result.returncode == 2  # no database yet
    sqlite3.connect(db).close()
    result = run_cli("audit", "checkpoint", "--db", str(db), "--key", str(seed_file))
    assert result.returncode == 2
    assert "--origin" in result.stderr

    result = run_cli(
        "audit", "checkpoint", "--db", str(db), "--key", str(seed_file), "--origin", "gw-cli"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tree_size"] == 0
    result = run_cli("audit", "checkpoint", "--db", str(db), "--key", str(full_file))
    assert result.returncode == 0, result.stderr

    other = _key_file(tmp_path / "other.key", os.urandom(32))
    result = run_cli("audit", "checkpoint", "--db", str(db), "--key", str(other))
    assert result.returncode == 1
    assert "identity_mismatch" in result.stderr

    loose = _key_file(tmp_path / "loose.key", bytes(key), mode=0o644)
    result = run_cli("audit", "checkpoint", "--db", str(db), "--key", str(loose))
    assert result.returncode == 2
    assert "chmod 600" in result.stderr

    code, report = _verify(db, "--gateway-pub", b64(bytes(key.verify_key)))
    assert code == 0, report


@pytest.mark.parametrize("value", ["not base64!", b64(bytes(31))])
def test_a_bad_gateway_pub_is_a_usage_error(db: Path, value: str) -> None:
    result = run_cli("audit", "verify", "--db", str(db), "--gateway-pub", value)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
