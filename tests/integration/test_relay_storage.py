"""The relay's storage suite: every test runs on SQLite and on a real PostgreSQL.

What ``cloud.storage.RelayStorage`` promises, checked through the interface only: gateways,
the held log and the witness checks (rewrite, truncation, equivocation become alarms, a gap
does not), receipts, replay-protection nonces, mail numbered per gateway, forward-only
migrations, and the per-gateway atomicity that several relay processes on one database rely
on (two storages opened on one database stand for two processes: each has its own
connections, so they race in the database, not in Python).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from cloud import migrations, wire
from cloud.storage import (
    Backend,
    NonceClaim,
    NonceReplayed,
    OwnerMismatch,
    RelayStorage,
    SchemaTooNew,
    StorageConfig,
    StorageConfigError,
    StorageError,
    UnknownGateway,
    load_config,
    open_storage,
    read_password_file,
)
from cloud.witness import Finding, Refused
from store import merkle
from store.checkpoint import Checkpoint, CheckpointSigner, SignedCheckpoint
from store.merkle import MemoryTree
from tests.support.postgres import Cluster
from tests.support.relay_backend import RelayBackend

GW = "gw-store"
OWNER = bytes(SigningKey(os.urandom(32)).verify_key)
RELAY = SigningKey(os.urandom(32))


class GatewayLog:
    """A gateway's log as the relay sees it: leaves, signed checkpoints, upload batches."""

    def __init__(self, gateway_id: str = GW, tag: bytes = b"e") -> None:
        self.gateway_id = gateway_id
        self.key = SigningKey(os.urandom(32))
        self.signer = CheckpointSigner(self.key, gateway_id)
        self.log = [tag + str(i).encode() for i in range(400)]

    @property
    def public(self) -> bytes:
        return bytes(self.key.verify_key)

    def checkpoint(self, size: int, log: list[bytes] | None = None) -> SignedCheckpoint:
        tree = MemoryTree([merkle.leaf_hash(x) for x in (log or self.log)[:size]])
        return self.signer.sign(size, tree.root(), 1000 + size)

    def batch(
        self, start: int, end: int, cp_size: int | None = None, log: list[bytes] | None = None
    ) -> wire.UploadBatch:
        source = log or self.log
        size = end if cp_size is None else cp_size
        tree = MemoryTree([merkle.leaf_hash(x) for x in source[:size]])
        cp = self.signer.sign(size, tree.root(), 1000 + size)
        proof = merkle.consistency_proof(tree, end, size)
        return wire.UploadBatch(self.gateway_id, start, tuple(source[start:end]), cp, tuple(proof))

    def receipt(self, size: int, index: int, log: list[bytes] | None = None) -> wire.WireReceipt:
        source = log or self.log
        tree = MemoryTree([merkle.leaf_hash(x) for x in source[:size]])
        cp = self.signer.sign(size, tree.root(), 2000 + size)
        proof = tuple(merkle.inclusion_proof(tree, index, size))
        return wire.WireReceipt(self.gateway_id, cp, ((index, source[index], proof),))


def cosign(cp: Checkpoint) -> bytes:
    return wire.cosign(RELAY, "relay:test", cp, 1_790_000_000)


async def opened(backend: RelayBackend, directory: Path) -> RelayStorage:
    return await open_storage(backend.config(directory))


async def registered(backend: RelayBackend, tmp_path: Path, log: GatewayLog) -> RelayStorage:
    storage = await opened(backend, tmp_path)
    await storage.register_gateway(log.gateway_id, log.public, OWNER, 1)
    return storage


async def test_gateways_register_once_per_owner(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    storage = await opened(relay_backend, tmp_path)
    try:
        with pytest.raises(UnknownGateway):
            await storage.gateway(GW)
        with pytest.raises(UnknownGateway):
            await storage.held_size(GW)
        await storage.register_gateway(GW, b"k" * 32, OWNER, 1)
        await storage.register_gateway(GW, b"n" * 32, OWNER, 2)  # a new key, same owner
        record = await storage.gateway(GW)
        assert (record.public_key, record.owner_key) == (b"n" * 32, OWNER)
        with pytest.raises(OwnerMismatch):
            await storage.register_gateway(GW, b"x" * 32, b"o" * 32, 3)
        assert await storage.held_size(GW) == 0
        await storage.ready()
    finally:
        await storage.close()


async def test_uploads_append_in_order_and_a_replay_changes_nothing(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    log = GatewayLog()
    storage = await registered(relay_backend, tmp_path, log)
    try:
        first = await storage.upload(GW, log.batch(0, 100, 150), cosign, 10)
        assert first.held_size == 100
        assert isinstance(first.result, bytes)
        again = await storage.upload(GW, log.batch(0, 100, 150), cosign, 11)
        assert again.held_size == 100
        overlap = await storage.upload(GW, log.batch(60, 150), cosign, 12)
        assert overlap.held_size == 150
        gap = await storage.upload(GW, log.batch(200, 210), cosign, 13)
        assert isinstance(gap.result, Refused)
        assert gap.result.finding is Finding.GAP
        assert gap.held_size == 150
        held = await storage.entries(GW, 0, 1000)
        assert held == list(enumerate(log.log[:150]))
        assert await storage.entries(GW, 140, 5) == list(enumerate(log.log[:150]))[140:145]
        sizes = [(w.checkpoint.checkpoint.tree_size, w.source) for w in await storage.witnessed(GW)]
        assert sizes == [(150, "gateway")]
        assert all(w.cosignature is not None for w in await storage.witnessed(GW))
        assert await storage.alarms(GW) == []
    finally:
        await storage.close()


async def test_rewrite_truncation_and_fork_are_alarms(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    log = GatewayLog()
    storage = await registered(relay_backend, tmp_path, log)
    try:
        assert (await storage.upload(GW, log.batch(0, 130), cosign, 1)).held_size == 130
        rewritten = list(log.log)
        rewritten[5] = b"changed"
        rewrite = await storage.upload(GW, log.batch(0, 140, log=rewritten), cosign, 2)
        assert isinstance(rewrite.result, Refused)
        assert rewrite.result.finding is Finding.REWRITE
        # A courier witnessed size 200; a log signed at 170 afterwards is a truncation.
        assert await storage.witness_receipt(log.receipt(200, 150), b"\0" * 32, 3) is None
        truncated = await storage.upload(GW, log.batch(130, 170), cosign, 4)
        assert isinstance(truncated.result, Refused)
        assert truncated.result.finding is Finding.EQUIVOCATION
        assert "truncated" in truncated.result.detail
        forked = list(log.log)
        forked[180] = b"fork"
        fork = await storage.upload(GW, log.batch(130, 220, log=forked), cosign, 5)
        assert isinstance(fork.result, Refused)
        assert fork.result.finding is Finding.EQUIVOCATION
        other = [b"x" + x for x in log.log]
        equivocating = await storage.witness_receipt(log.receipt(100, 7, log=other), b"", 6)
        assert isinstance(equivocating, Refused)
        assert equivocating.finding is Finding.EQUIVOCATION
        codes = [a.code for a in await storage.alarms(GW)]
        assert codes == ["rewrite", "equivocation", "equivocation", "equivocation"]
        assert [a.id for a in await storage.alarms(GW)] == sorted(
            a.id for a in await storage.alarms(GW)
        )
        # The honest log still goes through, past the witnessed size.
        assert (await storage.upload(GW, log.batch(130, 260), cosign, 7)).held_size == 260
        assert await storage.held_size(GW) == 260
    finally:
        await storage.close()


async def test_a_receipt_for_an_unknown_gateway_is_refused_like_a_forgery(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    log = GatewayLog()
    storage = await registered(relay_backend, tmp_path, log)
    stranger = GatewayLog("gw-unknown")
    nobody = bytes(SigningKey(os.urandom(32)).verify_key)
    try:
        unknown = await storage.witness_receipt(stranger.receipt(10, 3), nobody, 1)
        forged = await storage.witness_receipt(
            GatewayLog(GW).receipt(10, 3), nobody, 1
        )  # another key, the registered id
        assert isinstance(unknown, Refused)
        assert isinstance(forged, Refused)
        assert unknown.finding is forged.finding is Finding.MALFORMED
        assert await storage.witnessed("gw-unknown") == []
    finally:
        await storage.close()


async def test_a_nonce_is_claimed_once_until_it_expires(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    first = await opened(relay_backend, tmp_path)
    second = await opened(relay_backend, tmp_path)  # another relay process, same database
    try:
        assert await first.claim_nonce("nonce-a", expires_ms=5000, now_ms=1000)
        assert not await second.claim_nonce("nonce-a", expires_ms=5000, now_ms=1001)
        assert not await first.claim_nonce("nonce-a", expires_ms=5000, now_ms=1002)
        assert await second.claim_nonce("nonce-b", expires_ms=5000, now_ms=1003)
    finally:
        await first.close()
        await second.close()


async def test_an_upload_claims_its_nonce_in_its_own_transaction(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    """The relay claims an upload's nonce with the upload (one commit, not two): a nonce
    already claimed, by either process, refuses the upload and writes nothing of it."""
    log = GatewayLog()
    first = await registered(relay_backend, tmp_path, log)
    second = await opened(relay_backend, tmp_path)  # another relay process, same database
    try:
        done = await first.upload(GW, log.batch(0, 100), cosign, 10, NonceClaim("n-1", 5000))
        assert done.held_size == 100
        with pytest.raises(NonceReplayed):
            await second.upload(GW, log.batch(100, 150), cosign, 11, NonceClaim("n-1", 5000))
        assert not await second.claim_nonce("n-1", expires_ms=5000, now_ms=12)
        assert await second.claim_nonce("n-2", expires_ms=5000, now_ms=13)
        with pytest.raises(NonceReplayed):
            await first.upload(GW, log.batch(100, 150), cosign, 14, NonceClaim("n-2", 5000))
        assert await first.held_size(GW) == 100
        assert [w.checkpoint.checkpoint.tree_size for w in await second.witnessed(GW)] == [100]
        # The same upload racing itself on both processes: exactly one of them runs it.
        batch = log.batch(100, 150)
        results = await asyncio.gather(
            first.upload(GW, batch, cosign, 15, NonceClaim("n-3", 5000)),
            second.upload(GW, batch, cosign, 15, NonceClaim("n-3", 5000)),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["NonceReplayed", "UploadOutcome"]
        assert await second.held_size(GW) == 150
        assert await first.alarms(GW) == []
    finally:
        await first.close()
        await second.close()


async def test_mail_is_numbered_per_gateway_in_commit_order(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    log, other = GatewayLog(), GatewayLog("gw-other")
    first = await registered(relay_backend, tmp_path, log)
    second = await opened(relay_backend, tmp_path)
    await second.register_gateway(other.gateway_id, other.public, OWNER, 1)
    try:
        posts = [
            (first if n % 2 else second).post_mail(GW, f"mail {n}".encode(), n) for n in range(20)
        ]
        ids = await asyncio.gather(*posts)
        assert sorted(ids) == list(range(1, 21))
        assert await second.post_mail("gw-other", b"elsewhere", 1) == 1
        items = await first.mail_after(GW, 0, 100)
        assert [m.id for m in items] == list(range(1, 21))
        assert [m.id for m in await first.mail_after(GW, 15, 3)] == [16, 17, 18]
        assert [m.sealed for m in await first.mail_after("gw-other", 0, 10)] == [b"elsewhere"]
    finally:
        await first.close()
        await second.close()


async def test_two_processes_racing_one_gateway_lose_and_duplicate_nothing(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    """Retries landing on the other process: every batch is sent to both storages at once,
    overlapping its neighbours; the held log ends exactly 0..N-1, with no alarm."""
    log = GatewayLog()
    first = await registered(relay_backend, tmp_path, log)
    second = await opened(relay_backend, tmp_path)
    try:
        bounds = [(s, min(s + 30, 400)) for s in range(0, 400, 20)]
        for start, end in bounds:
            batch = log.batch(max(0, start - 10), end, min(400, end + 25))
            outcomes = await asyncio.gather(
                first.upload(GW, batch, cosign, start), second.upload(GW, batch, cosign, start)
            )
            assert all(isinstance(o.result, bytes) for o in outcomes), outcomes
            assert {o.held_size for o in outcomes} == {end}
        assert await first.entries(GW, 0, 1000) == list(enumerate(log.log))
        assert await second.alarms(GW) == []
    finally:
        await first.close()
        await second.close()


async def test_two_processes_racing_a_fork_raise_exactly_one_alarm(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    """Two different logs of the same size reach two processes at once: one is held, the
    other is an alarm; never both held, never both refused, never a second alarm."""
    log = GatewayLog()
    first = await registered(relay_backend, tmp_path, log)
    second = await opened(relay_backend, tmp_path)
    forked = list(log.log)
    forked[40] = b"fork"
    try:
        await first.upload(GW, log.batch(0, 30), cosign, 1)
        outcomes = await asyncio.gather(
            first.upload(GW, log.batch(30, 70), cosign, 2),
            second.upload(GW, log.batch(30, 70, log=forked), cosign, 2),
        )
        held = [o for o in outcomes if isinstance(o.result, bytes)]
        refused = [o.result for o in outcomes if isinstance(o.result, Refused)]
        assert len(held) == 1
        assert len(refused) == 1
        assert refused[0].finding in (Finding.EQUIVOCATION, Finding.REWRITE)
        assert [a.code for a in await first.alarms(GW)] == [refused[0].finding.value]
        winner = log.log if held[0] is outcomes[0] else forked
        assert await second.entries(GW, 0, 100) == list(enumerate(winner[:70]))
    finally:
        await first.close()
        await second.close()


async def test_migrations_run_once_and_a_newer_database_is_refused(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    backend = Backend.POSTGRESQL if relay_backend.is_postgres else Backend.SQLITE
    opens = await asyncio.gather(*(opened(relay_backend, tmp_path) for _ in range(3)))
    try:
        for storage in opens:
            assert await storage.schema_version() == migrations.latest(backend)
    finally:
        for storage in opens:
            await storage.close()
    future = migrations.latest(backend) + 1
    if relay_backend.is_postgres:
        assert relay_backend.cluster is not None
        database = relay_backend.config(tmp_path).dsn.rsplit("/", 1)[1]
        relay_backend.cluster.psql(
            f"INSERT INTO schema_migrations VALUES ({future}, 'from_the_future', 0)", database
        )
    else:
        conn = sqlite3.connect(tmp_path / "relay.sqlite3")
        with conn:
            conn.execute(f"INSERT INTO schema_migrations VALUES ({future}, 'from_the_future', 0)")
        conn.close()
    with pytest.raises(SchemaTooNew):
        await opened(relay_backend, tmp_path)


async def test_a_sqlite_relay_from_before_migrations_keeps_its_data_and_mail_ids(
    tmp_path: Path,
) -> None:
    path = tmp_path / "relay.sqlite3"
    conn = sqlite3.connect(path)
    with conn:
        first = migrations.migrations(Backend.SQLITE)[0].sql
        conn.executescript(first)
        conn.execute("INSERT INTO gateway VALUES ('gw-old', x'01', x'02', 1)")
        conn.execute("INSERT INTO log_state VALUES ('gw-old', 0, 1)")
        conn.execute(
            "INSERT INTO mailbox (id, gateway_id, sealed, posted_ms) VALUES (7, 'gw-old', x'aa', 1)"
        )
        conn.execute(
            "INSERT INTO mailbox (id, gateway_id, sealed, posted_ms) VALUES (9, 'gw-old', x'bb', 2)"
        )
    conn.close()
    storage = await open_storage(StorageConfig.sqlite(path))
    try:
        assert await storage.schema_version() == migrations.latest(Backend.SQLITE)
        assert (await storage.gateway("gw-old")).owner_key == b"\x02"
        # The gateway's cursor (after=7) still means what it meant.
        assert [m.id for m in await storage.mail_after("gw-old", 7, 10)] == [9]
        assert await storage.post_mail("gw-old", b"new", 3) == 10
    finally:
        await storage.close()


def test_the_password_file_must_be_private(tmp_path: Path) -> None:
    secret = tmp_path / "db.password"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    with pytest.raises(StorageConfigError, match="chmod 600"):
        read_password_file(secret)
    secret.chmod(0o600)
    assert read_password_file(secret) == "s3cret"
    with pytest.raises(StorageConfigError, match="cannot read"):
        read_password_file(tmp_path / "missing")


def test_relay_toml_chooses_the_backend(tmp_path: Path) -> None:
    assert load_config(tmp_path) == StorageConfig.sqlite(tmp_path / "relay.sqlite3")
    toml = tmp_path / "relay.toml"
    toml.write_text(
        '[storage]\nbackend = "postgresql"\ndsn = "postgresql://relay@db:5432/relay"\n'
        'password_file = "db.password"\n'
    )
    config = load_config(tmp_path)
    assert config.backend is Backend.POSTGRESQL
    assert config.password_file == tmp_path / "db.password"
    for bad in (
        '[storage]\nbackend = "mysql"\n',
        '[storage]\nbackend = "postgresql"\n',
        '[storage]\nbackend = "postgresql"\ndsn = "postgresql://relay:pw@db/relay"\n',
        '[storage]\nbackend = "postgresql"\ndsn = "host=db password=pw"\n',
        '[storage]\nbackend = "sqlite"\ncolour = "blue"\n',
        "[storage\n",
    ):
        toml.write_text(bad)
        with pytest.raises(StorageConfigError):
            load_config(tmp_path)


async def test_a_wrong_password_is_a_typed_error(tmp_path: Path, postgres_cluster: Cluster) -> None:
    config = RelayBackend("postgresql", postgres_cluster).config(tmp_path)
    assert config.password_file is not None
    config.password_file.write_text("wrong\n")
    with pytest.raises(StorageError, match="cannot reach"):
        await open_storage(config)
