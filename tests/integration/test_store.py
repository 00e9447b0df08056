"""The async store on real SQLite files: durability settings, atomic transactions, proofs,
receipts, sealing, migrations, and the state behind offline decisions."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from gateway.clients.owner_log import open_leaf
from gateway.trust.seal import Sealer, Unsealer
from store import merkle
from store.commitment import leaf_sealed_box
from store.entry import canonical_bytes
from store.errors import (
    DoorBusy,
    IdentityMismatch,
    IntegrityViolation,
    NoSigningKey,
    SchemaTooNew,
)
from store.migrations import LATEST_VERSION, migrate
from store.state import (
    REVOCATION_PURGE_AFTER_MS,
    ChallengeOutcome,
    RevocationEntry,
    RevocationOutcome,
)
from store.transaction import StoreTransaction
from store.verify import verify_log
from tests.support.store import ManualClock, new_signer, open_store


async def test_durability_settings_and_private_file(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "g.db", new_signer())
    try:
        settings = await store.settings()
        assert settings == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "foreign_keys": 1,
            "busy_timeout": 5000,
        }
        await store.append("session.requested", {})
        for name in ("g.db", "g.db-wal", "g.db-shm"):  # the WAL holds the same secrets
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    finally:
        await store.close()


async def test_appends_proofs_and_receipts(tmp_path: Path) -> None:
    signer = new_signer()
    store = await open_store(tmp_path / "g.db", signer, checkpoint_every=10)
    try:
        leaves = []
        for i in range(57):
            stored = await store.append("session.requested", {"n": i})
            assert stored.entry.index == i
            leaves.append(merkle.leaf_hash(stored.leaf_bytes))
        reference = merkle.MemoryTree(leaves)
        for size in (0, 1, 10, 33, 57):
            assert await store.root_at(size) == merkle.root_at(reference, size)
        checkpoint = await store.latest_checkpoint()
        assert checkpoint is not None
        assert checkpoint.checkpoint.tree_size == 50  # made every 10 entries
        for index in (0, 13, 49, 50, 56):
            receipt = await store.receipt(index)
            assert receipt.verify(signer.public_key)
            assert json.loads(json.dumps(receipt.to_json()))["index"] == index
        # The receipt for 56 needed a checkpoint covering it, signed on demand.
        latest = await store.latest_checkpoint()
        assert latest is not None
        assert latest.checkpoint.tree_size == 57
        proof = await store.consistency_proof(50, 57)
        assert merkle.verify_consistency(
            50, 57, checkpoint.checkpoint.root_hash, latest.checkpoint.root_hash, proof
        )
    finally:
        await store.close()


async def test_reopen_continues_the_same_tree(tmp_path: Path) -> None:
    signer = new_signer()
    store = await open_store(tmp_path / "g.db", signer)
    for i in range(21):
        await store.append("lock.unlocked", {"n": i})
    await store.close()
    store = await open_store(tmp_path / "g.db", signer)
    try:
        assert store.tree_size == 21
        await store.append("lock.locked", {})
        await store.checkpoint()
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "g.db")
    assert verify_log(conn).ok
    conn.close()


async def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "g.db", new_signer(), checkpoint_every=2)
    try:
        await store.append("session.requested", {"n": 0})

        def grant_then_fail(tx: StoreTransaction) -> None:
            tx.append("session.granted", {"n": 1})
            tx.append("lock.unlocked", {"n": 2})
            tx.state.consume_use("k4.pid.issuer", "ticket-1", 1, tx.now_ms())
            raise RuntimeError("the caller changed its mind")

        with pytest.raises(RuntimeError):
            await store.transact(grant_then_fail)
        assert store.tree_size == 1
        assert await store.entry(1) is None
        assert (await store.consume_use("k4.pid.issuer", "ticket-1", 1)).granted
        stored = await store.append("session.denied", {})
        assert stored.entry.index == 1
    finally:
        await store.close()


async def test_granted_event_and_session_state_commit_together(tmp_path: Path) -> None:
    clock = ManualClock()
    store = await open_store(tmp_path / "g.db", new_signer(), clock=clock)
    try:

        def grant(tx: StoreTransaction) -> int:
            requested = tx.append("session.requested", {"door": "front"})
            tx.state.open_session(
                "s1", "front", "requested", tx.now_ms(), audit_index=requested.entry.index
            )
            granted = tx.append("session.granted", {"door": "front"})
            tx.state.set_session_state(
                "s1", "granted", tx.now_ms(), audit_index=granted.entry.index
            )
            return granted.entry.index

        index = await store.transact(grant)
        assert index == 1
        sessions = await store.unclosed_sessions()
        assert [(s.session_id, s.state) for s in sessions] == [("s1", "granted")]
        with pytest.raises(DoorBusy):
            await store.transact(
                lambda tx: tx.state.open_session("s2", "front", "requested", tx.now_ms())
            )
        await store.transact(
            lambda tx: tx.state.set_session_state("s1", "closed", tx.now_ms(), terminal=True)
        )
        assert await store.unclosed_sessions() == []
        history = await store.read(
            lambda conn: __import__("store.state").state.StateTables(conn).session_history("s1")
        )
        assert [h.state for h in history] == ["requested", "granted", "closed"]
        assert [h.audit_index for h in history] == [0, 1, None]
        with pytest.raises(IntegrityViolation):
            await store.transact(lambda tx: tx.state.set_session_state("s1", "open", tx.now_ms()))
    finally:
        await store.close()


async def test_append_only_triggers_refuse_changes(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "g.db", new_signer(), checkpoint_every=2)
    for i in range(4):
        await store.append("session.requested", {"n": i})
    await store.close()
    conn = sqlite3.connect(tmp_path / "g.db")
    for statement in (
        "UPDATE audit_entry SET kind = 'x.y' WHERE idx = 1",
        "DELETE FROM audit_entry WHERE idx = 3",
        "UPDATE merkle_node SET hash = zeroblob(32)",
        "DELETE FROM checkpoint",
        "INSERT INTO audit_entry VALUES (9, 1, 'a.b', '{}', 0, x'00', zeroblob(32))",
    ):
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(statement)
    conn.close()


async def test_checkpoint_needs_the_key_and_the_key_must_match(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "g.db", new_signer())
    await store.close()
    keyless = await open_store(tmp_path / "g.db", None)
    try:
        await keyless.append("session.requested", {})
        with pytest.raises(NoSigningKey):
            await keyless.checkpoint()
    finally:
        await keyless.close()
    with pytest.raises(IdentityMismatch):
        await open_store(tmp_path / "g.db", new_signer())


async def test_sealed_entries_hash_the_sealed_bytes(tmp_path: Path) -> None:
    owner = SigningKey.generate()
    signer = new_signer()
    seal = Sealer(bytes(owner.verify_key))
    store = await open_store(tmp_path / "g.db", signer, seal=seal)
    try:
        stored = await store.append("lock.unlocked", {"door": "front"})
        assert stored.sealed
        # Leaf format 2: field tags, then the seal of (entry key, canonical bytes).
        assert open_leaf(Unsealer(bytes(owner)), stored.leaf_bytes) == stored.entry
        payload = Unsealer(bytes(owner)).open(leaf_sealed_box(stored.leaf_bytes))
        assert payload.endswith(canonical_bytes(stored.entry))
        assert stored.leaf_hash == merkle.leaf_hash(stored.leaf_bytes)
        reread = await store.entry(0)
        assert reread == stored  # sealed once, at append, and kept
        receipt = await store.receipt(0)
        assert receipt.verify(signer.public_key)
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "g.db")
    assert verify_log(conn).ok
    conn.close()


def _build_at_version(path: Path, version: int) -> None:
    """A database exactly as code of schema ``version`` left it, with data in every table."""
    from store.entry import AuditEntry, canonical_body, canonical_bytes

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, target=version)
    if version >= 1:
        tree = merkle.MemoryTree()
        for i, time_ms in enumerate((1000, 3000, 2000)):
            entry = AuditEntry(i, time_ms, "session.requested", {"n": i})
            leaf = canonical_bytes(entry)
            digest = merkle.leaf_hash(leaf)
            conn.execute(
                "INSERT INTO audit_entry VALUES (?, ?, ?, ?, 0, ?, ?)",
                (i, time_ms, entry.kind, canonical_body(entry.body).decode(), leaf, digest),
            )
            for node in tree.append(digest):
                conn.execute(
                    "INSERT INTO merkle_node VALUES (?, ?, ?)", (node.level, node.index, node.hash)
                )
    if version >= 2:
        # Code at v2 and later keeps the floor as it appends.
        conn.execute("UPDATE time_floor SET time_ms = 3000")
        if version >= 4:  # v4 keys uses on (issuer, id); counts from before sit under ''
            conn.execute("INSERT INTO ticket_use VALUES ('', 'old-ticket', 1, 1, 5)")
        else:
            conn.execute("INSERT INTO ticket_use VALUES ('old-ticket', 1, 1, 5)")
    conn.close()


@pytest.mark.parametrize("version", range(LATEST_VERSION))
async def test_every_older_version_migrates_to_the_latest(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.db"
    _build_at_version(path, version)
    store = await open_store(path, new_signer())
    try:
        assert store.tree_size == (3 if version >= 1 else 0)
        if version >= 1:
            assert await store.time_floor() == 3000  # v2 seeds the floor from the log
        use = await store.consume_use("k4.pid.issuer", "old-ticket", 1)
        assert use.granted is (version < 2)
        await store.append("gateway.started", {})
        await store.checkpoint()
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    report = verify_log(conn)
    assert report.ok, report
    conn.close()


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match=f"version {LATEST_VERSION + 1}") as info:
        await open_store(path, new_signer())
    assert info.value.code == "schema_too_new"


async def test_consume_use_race_exactly_one_wins(tmp_path: Path) -> None:
    # Two writer connections on one file, 50 tasks: the schema's rules hold across them too.
    first = await open_store(tmp_path / "g.db", new_signer("gw-a"))
    second = await open_store(tmp_path / "g.db", None)
    try:
        tasks = [
            (first if i % 2 else second).consume_use("k4.pid.a", "ticket-single", 1)
            for i in range(50)
        ]
        results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        assert sum(result.granted for result in results) == 1
        assert all(result.uses == 1 for result in results)
        three = await asyncio.gather(
            *(first.consume_use("k4.pid.a", "ticket-three", 3) for _ in range(10))
        )
        assert sum(result.granted for result in three) == 3
        # A copy claiming a higher limit cannot raise it.
        assert not (await first.consume_use("k4.pid.a", "ticket-three", 9)).granted
    finally:
        await first.close()
        await second.close()


async def test_challenge_race_and_rules(tmp_path: Path) -> None:
    clock = ManualClock()
    first = await open_store(tmp_path / "g.db", new_signer(), clock=clock)
    second = await open_store(tmp_path / "g.db", None, clock=clock)
    try:
        nonce = await first.issue_challenge(10_000, bound_to="ticket-1")
        assert len(nonce) == 32
        tasks = [
            (first if i % 2 else second).consume_challenge(nonce, "ticket-1") for i in range(50)
        ]
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        assert outcomes.count(ChallengeOutcome.CONSUMED) == 1
        assert outcomes.count(ChallengeOutcome.ALREADY_USED) == 49

        bound = await first.issue_challenge(10_000, bound_to="ticket-1")
        assert await first.consume_challenge(bound, "ticket-2") is ChallengeOutcome.WRONG_BINDING
        assert await first.consume_challenge(bytes(32)) is ChallengeOutcome.UNKNOWN
        late = await first.issue_challenge(10_000)
        clock.advance(10_000)
        assert await first.consume_challenge(late) is ChallengeOutcome.EXPIRED
        assert await first.purge_challenges() == 3
        assert await first.consume_challenge(late) is ChallengeOutcome.UNKNOWN
    finally:
        await first.close()
        await second.close()


async def test_revocations_are_a_union_kept_until_they_expire(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "g.db", new_signer())
    far = 10**13  # year 2286: beyond any time floor here
    try:
        assert await store.revocation_list() is None
        first = [RevocationEntry("sub", "ex-cleaner", far), RevocationEntry("jti", "t-1", 5)]
        outcome, held = await store.add_revocations(5, "v4.public.five", first)
        assert outcome is RevocationOutcome.STORED
        assert {e.value for e in held} == {"ex-cleaner", "t-1"}
        # A newer list that leaves them out takes nothing away; an older one still adds.
        outcome, held = await store.add_revocations(6, "v4.public.six", [])
        assert outcome is RevocationOutcome.DUPLICATE
        assert {e.value for e in held} == {"ex-cleaner", "t-1"}
        older = [RevocationEntry("keys", "A" * 43, far), RevocationEntry("jti", "t-1", 3)]
        outcome, held = await store.add_revocations(2, "v4.public.two", older)
        assert outcome is RevocationOutcome.STORED
        assert {(e.value, e.until_ms) for e in held} == {
            ("ex-cleaner", far),
            ("t-1", 5),  # a shorter until does not shorten what is held
            ("A" * 43, far),
        }
        current = await store.revocation_list()
        assert current is not None
        assert (current.seq, current.token) == (6, "v4.public.six")
        # The floor passes t-1's until by more than a day: it is purged at the next list.
        await store.append("gateway.started", {}, REVOCATION_PURGE_AFTER_MS + 10)
        _, held = await store.add_revocations(7, "v4.public.seven", [])
        assert {e.value for e in held} == {"ex-cleaner", "A" * 43}
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "g.db")
    with pytest.raises(sqlite3.IntegrityError, match="kept until it expires"):
        conn.execute("DELETE FROM revocation_entry WHERE value = 'ex-cleaner'")
    with pytest.raises(sqlite3.IntegrityError, match="only ever extended"):
        conn.execute("UPDATE revocation_entry SET until_ms = 1 WHERE value = 'ex-cleaner'")
    conn.close()


async def test_use_counts_are_per_issuer_and_keep_counts_from_before(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    _build_at_version(path, 3)  # holds 'old-ticket' used once of one
    store = await open_store(path, new_signer())
    try:
        # One issuer's uses are not another's.
        assert (await store.consume_use("k4.pid.a", "t-shared", 1)).granted
        assert (await store.consume_use("k4.pid.b", "t-shared", 1)).granted
        assert not (await store.consume_use("k4.pid.a", "t-shared", 1)).granted
        # The count from before the migration holds against any issuer's ticket of that id.
        refused = await store.consume_use("k4.pid.b", "old-ticket", 2)
        assert refused.granted
        assert refused.uses == 2
        assert not (await store.consume_use("k4.pid.b", "old-ticket", 2)).granted
        assert not (await store.consume_use("k4.pid.c", "old-ticket", 1)).granted
    finally:
        await store.close()


async def test_time_floor_pairings_clips_and_sync_cursor(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "g.db", new_signer())
    try:
        assert await store.time_floor() == 0
        await store.append("clock.seen", {}, time_ms=5_000)
        await store.append("clock.seen", {}, time_ms=4_000)  # a clock that went back
        assert await store.time_floor() == 5_000

        await store.set_lock_pairing("front", "nuki", b"\x01\x02")
        await store.set_lock_pairing("front", "nuki", b"\x03")
        pairing = await store.lock_pairing("front")
        assert pairing is not None
        assert pairing.data == b"\x03"
        assert await store.lock_pairing("back") is None

        await store.add_clip("clips/0001.mp4", bytes(32), 1, 1234)
        assert [c.path for c in await store.clips_for(1)] == ["clips/0001.mp4"]
        with pytest.raises(IntegrityViolation):
            await store.add_clip("clips/0002.mp4", bytes(32), 99, 1)  # no such entry

        await store.ack_tree_size(2)
        assert await store.acked_tree_size() == 2
        with pytest.raises(IntegrityViolation):
            await store.ack_tree_size(3)  # beyond the log
        with pytest.raises(IntegrityViolation):
            await store.ack_tree_size(1)  # backwards
    finally:
        await store.close()


async def test_two_writers_on_one_file_keep_one_tree(tmp_path: Path) -> None:
    signer = new_signer()
    first = await open_store(tmp_path / "g.db", signer, checkpoint_every=5)
    second = await open_store(tmp_path / "g.db", signer, checkpoint_every=5)
    try:
        indexes = []
        for i in range(12):
            writer = first if i % 3 else second
            indexes.append((await writer.append("session.requested", {"n": i})).entry.index)
        assert indexes == list(range(12))
    finally:
        await first.close()
        await second.close()
    conn = sqlite3.connect(tmp_path / "g.db")
    report = verify_log(conn)
    assert report.ok, report
    conn.close()
