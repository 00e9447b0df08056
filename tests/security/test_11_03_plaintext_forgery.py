"""Issue 11, finding 3 (and issue 12): the plaintext copy of a sealed entry is never checked.

The attack: with the database's triggers dropped (no key needed), edit the readable copy of a
sealed entry (``kind``, ``body``, ``time_ms``) or a clip file together with the ``sha256``
column of the clip index. Before the fix ``audit verify`` passed, and ``audit tail`` and the
signed, pinned ``owner events`` showed the forgery as fact. Now ``audit verify`` names the
first bad index and the field (or the clip), and the owner's views flag the row as
unverified.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from gateway.trust.seal import Sealer
from store.transaction import StoreTransaction
from tests.support.cli import run_cli
from tests.support.service import running_harness
from tests.support.store import b64, new_signer, open_store

SEALED_INDEX = 3
CLIP_INDEX = 5


async def _build(directory: Path) -> tuple[Path, Path, str]:
    """A sealed log of 8 entries with one filmed clip; returns (db, clip file, gateway key)."""
    db = directory / "threshold.db"
    clip = directory / "clips" / "visit.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(200)))
    signer = new_signer()
    owner = SigningKey.generate()
    store = await open_store(db, signer, checkpoint_every=4, seal=Sealer(bytes(owner.verify_key)))
    digest = hashlib.sha256(clip.read_bytes()).digest()

    def film(tx: StoreTransaction) -> None:
        body = {"path": str(clip), "sha256": digest.hex(), "size_bytes": clip.stat().st_size}
        stored = tx.append("clip.recorded", body)
        tx.state.add_clip(str(clip), digest, stored.entry.index, clip.stat().st_size)

    try:
        for n in range(CLIP_INDEX):
            await store.append("session.granted", {"door": "front", "ticket": f"t{n}"})
        await store.transact(film)
        await store.append("session.closed", {"door": "front"})
        await store.append("lock.locked", {"door": "front"})
        await store.checkpoint()
    finally:
        await store.close()
    return db, clip, b64(signer.public_key)


@pytest.fixture
async def home(tmp_path: Path) -> tuple[Path, Path, str]:
    return await _build(tmp_path)


def _as_thief(db: Path) -> sqlite3.Connection:
    """A plain connection with the append-only triggers dropped: no key, no tool."""
    conn = sqlite3.connect(db, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def _rewrite_body(db: Path, index: int, change: object) -> None:
    conn = _as_thief(db)
    (body,) = conn.execute("SELECT body FROM audit_entry WHERE idx = ?", (index,)).fetchone()
    new = change(json.loads(body))  # type: ignore[operator]
    text = json.dumps(new, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    conn.execute("UPDATE audit_entry SET body = ? WHERE idx = ?", (text, index))
    conn.close()


def _verify(db: Path, key: str) -> dict[str, object]:
    result = run_cli("audit", "verify", "--db", str(db), "--gateway-pub", key)
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert (result.returncode == 0) == report["ok"]
    return dict(report)


def test_the_untouched_log_verifies(home: tuple[Path, Path, str]) -> None:
    db, _, key = home
    report = _verify(db, key)
    assert report["ok"] is True, report
    assert report["clips"] == 1
    assert report["unchecked_plaintext"] == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("kind", "'session.denied'"),
        ("body", """'{"door":"back","ticket":"t3"}'"""),
        ("time_ms", "time_ms + 3600000"),
    ],
)
def test_an_edited_column_of_a_sealed_row_is_named(
    home: tuple[Path, Path, str], column: str, value: str
) -> None:
    db, _, key = home
    conn = _as_thief(db)
    assert conn.execute("SELECT sealed FROM audit_entry WHERE idx = ?", (SEALED_INDEX,)).fetchone()
    conn.execute(f"UPDATE audit_entry SET {column} = {value} WHERE idx = ?", (SEALED_INDEX,))
    conn.close()
    report = _verify(db, key)
    assert report["ok"] is False
    assert report["first_bad_index"] == SEALED_INDEX
    assert report["field"] == column
    tail = run_cli("audit", "tail", "--db", str(db), "-n", "8")
    flagged = [line for line in tail.stdout.splitlines() if "[unverified" in line]
    assert len(flagged) == 1, tail.stdout
    assert flagged[0].split()[0] == str(SEALED_INDEX)


def test_flipping_the_sealed_flag_is_named(home: tuple[Path, Path, str]) -> None:
    db, _, key = home
    conn = _as_thief(db)
    conn.execute("UPDATE audit_entry SET sealed = 0 WHERE idx = 2")
    conn.close()
    report = _verify(db, key)
    assert (report["ok"], report["first_bad_index"], report["field"]) == (False, 2, "sealed")


def test_a_changed_clip_with_its_sha256_column_edited_is_named(
    home: tuple[Path, Path, str],
) -> None:
    db, clip, key = home
    clip.write_bytes(b"another recording entirely")
    conn = _as_thief(db)
    conn.execute(
        "UPDATE clip SET sha256 = ?, size_bytes = ?",
        (hashlib.sha256(clip.read_bytes()).digest(), clip.stat().st_size),
    )
    conn.close()
    report = _verify(db, key)
    assert report["ok"] is False
    assert report["clip"] == str(clip)
    assert report["first_bad_index"] == CLIP_INDEX
    assert report["field"] == "sha256"


def test_a_changed_clip_file_is_named(home: tuple[Path, Path, str]) -> None:
    db, clip, key = home
    clip.write_bytes(clip.read_bytes() + b"spliced")
    report = _verify(db, key)
    assert (report["ok"], report["clip"], report["field"]) == (False, str(clip), "clip_file")
    assert "changed" in str(report["problem"])


def test_a_missing_clip_file_is_named(home: tuple[Path, Path, str]) -> None:
    db, clip, key = home
    clip.unlink()
    report = _verify(db, key)
    assert (report["ok"], report["clip"], report["field"]) == (False, str(clip), "clip_file")
    assert "missing" in str(report["problem"])


def test_a_forged_clip_entry_body_is_named(home: tuple[Path, Path, str]) -> None:
    db, clip, key = home
    clip.write_bytes(b"another recording entirely")
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    _rewrite_body(db, CLIP_INDEX, lambda body: {**body, "sha256": digest})
    report = _verify(db, key)
    assert (report["ok"], report["first_bad_index"], report["field"]) == (False, CLIP_INDEX, "body")


def test_another_commitment_key_is_refused(home: tuple[Path, Path, str]) -> None:
    db, _, key = home
    key_file = db.with_name(db.name + ".audit-key")
    key_file.unlink()
    key_file.write_text("A" * 43 + "\n")
    key_file.chmod(0o600)
    report = _verify(db, key)
    assert report["ok"] is False
    assert report["field"] == "commitment_key"


async def test_owner_events_flag_a_forged_row(tmp_path: Path) -> None:
    """The signed, pinned owner API of a running gateway: the edited row is not shown as
    fact; every other row is, and says so."""
    async with running_harness(tmp_path / "gw") as h:
        owner = h.keys.owner
        for action in ("unlock", "lock"):
            await h.client.owner(
                owner, "POST", "/v1/owner/lock", {"door": "front", "action": action}
            )
        events = (await h.client.owner(owner, "GET", "/v1/owner/events"))["events"]
        assert events
        assert all(e["verified"] is True for e in events), events
        target = next(e for e in events if e["kind"] == "owner.unlock")
        db = h.gateway.config.database

        def forge() -> None:
            conn = _as_thief(db)
            sealed = conn.execute(
                "SELECT sealed FROM audit_entry WHERE idx = ?", (target["index"],)
            ).fetchone()[0]
            assert sealed == 1  # entries are sealed by default
            conn.execute(
                "UPDATE audit_entry SET kind = 'owner.lock' WHERE idx = ?", (target["index"],)
            )
            conn.close()

        await asyncio.to_thread(forge)
        events = (await h.client.owner(owner, "GET", "/v1/owner/events"))["events"]
    forged = [e for e in events if not e["verified"]]
    assert [e["index"] for e in forged] == [target["index"]]
    assert forged[0]["unverified"]["field"] == "kind"


async def test_an_old_database_migrates_and_its_old_entries_still_verify(tmp_path: Path) -> None:
    """Entries sealed before commitments (leaf format 1, schema 3) cannot be rewritten (their
    leaves are signed): they still verify, are counted as unchecked, and are never shown as
    verified; every entry after the migration is in format 2 and checked."""
    from store import audit_log
    from store.migrations import migrate

    db = tmp_path / "threshold.db"
    signer = new_signer()
    owner = SigningKey.generate()
    seal = Sealer(bytes(owner.verify_key))
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, target=3)
    conn.execute(
        "INSERT INTO gateway_identity (singleton, origin, public_key) VALUES (1, ?, ?)",
        (signer.origin, signer.public_key),
    )
    frontier = audit_log.load_frontier(conn)
    for n in range(3):
        audit_log.insert_entry(conn, frontier, "session.granted", {"n": n}, 1_790_000_000_000, seal)
    legacy = signer.sign_legacy(frontier.size, frontier.root(), 1_790_000_000_000)
    conn.execute(
        "INSERT INTO checkpoint (tree_size, time_ms, origin, root_hash, signature)"
        " VALUES (?, ?, ?, ?, ?)",
        (frontier.size, 1_790_000_000_000, signer.origin, frontier.root(), legacy.signature),
    )
    conn.close()
    store = await open_store(db, signer, seal=seal)
    try:
        await store.append("session.closed", {"n": 3})
        await store.checkpoint()
        shown = await store.checked_entries(0, 10)
    finally:
        await store.close()
    assert [c.verified for c in shown] == [False, False, False, True]
    assert shown[0].verdict.status.value == "uncheckable"
    report = _verify(db, b64(signer.public_key))
    assert report["ok"] is True, report
    assert report["unchecked_plaintext"] == 3
