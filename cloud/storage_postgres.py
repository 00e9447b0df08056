"""The relay's PostgreSQL backend: many relay processes, one database (psycopg 3, async pool).

Concurrency. Every relay process has its own pool; any of them may receive any gateway's
request. The per-gateway check-and-append (:meth:`PostgresStorage.upload`, and a courier's
receipt, which must not slip between an upload's check and its write) runs in one READ
COMMITTED transaction that first takes the gateway's ``log_state`` row with ``SELECT ... FOR
UPDATE``: a second process with a batch for the same gateway waits on that row until the
first commits, then reads the held size, tree and witnessed checkpoints the first one wrote
(READ COMMITTED takes a fresh snapshot per statement). So the two batches are judged one
after the other, never against the same stale state: no entry lost, duplicated or
misordered, no false alarm and no missed one. Different gateways never wait for each other.
Mail is numbered under the same lock, so a gateway's mail ids commit in order.

The witness checks are pure and synchronous; the held tree nodes they read are fetched in
one query beforehand (``cloud.witness.nodes_for_batch``), and a node the prediction missed
is fetched and the check run again.

Replay protection: each signed request's nonce is inserted into ``request_nonce``; the
primary key makes the second insert of a nonce, by any process, a no-op that reports the
replay. Expired nonces are deleted by each process every :data:`PRUNE_EVERY_S`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cloud import migrations, witness
from cloud.storage import (
    Alarm,
    Backend,
    Cosigner,
    GatewayRecord,
    MailItem,
    NonceClaim,
    NonceReplayed,
    OwnerMismatch,
    StorageError,
    UnknownGateway,
    UploadOutcome,
    WitnessedRecord,
    WitnessStep,
    origin_hash,
    signed_from_row,
    stored_signature,
)
from cloud.wire import UploadBatch, WireReceipt
from cloud.witness import Accepted, FetchedNodes, NodeMissing, Refused, Witnessed
from store.checkpoint import SignedCheckpoint

Conn = AsyncConnection[tuple[Any, ...]]
#: One key for the advisory lock that serialises migrations across relay processes.
MIGRATION_LOCK = 0x7468726573686F6C  # "threshol"
PRUNE_EVERY_S = 10.0
#: The gateway's key and held size, its log_state row locked until the transaction ends.
LOCK_SQL = (
    "SELECT g.public_key, s.held_size FROM log_state s"
    " JOIN gateway g ON g.gateway_id = s.gateway_id"
    " WHERE s.gateway_id = %s FOR UPDATE OF s"
)
CLAIM_SQL = "INSERT INTO request_nonce (nonce, expires_ms) VALUES (%s, %s) ON CONFLICT DO NOTHING"
CONNECT_TIMEOUT_S = 30.0


class PostgresStorage:
    """:class:`cloud.storage.RelayStorage` on PostgreSQL."""

    def __init__(self, pool: AsyncConnectionPool[Conn]) -> None:
        self._pool = pool
        self._pruned_at = 0.0

    @classmethod
    async def open(
        cls, dsn: str, password: str | None, *, pool_size: int = 8, now_ms: int = 0
    ) -> PostgresStorage:
        kwargs: dict[str, Any] = {"autocommit": True}
        if password is not None:
            kwargs["password"] = password
        # One connection first: a wrong password or host fails here at once, with the
        # server's reason, instead of as a pool timeout; it also runs the migrations.
        try:
            first = await AsyncConnection.connect(
                dsn, connect_timeout=int(CONNECT_TIMEOUT_S), **kwargs
            )
        except psycopg.Error as exc:
            raise StorageError(f"cannot reach the relay database: {exc}") from None
        try:
            await cls._migrate(first, now_ms)
        finally:
            await first.close()
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            dsn,
            kwargs=kwargs,
            min_size=min(2, pool_size),
            max_size=pool_size,
            open=False,
            timeout=CONNECT_TIMEOUT_S,
            name="threshold-relay",
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            raise StorageError(f"cannot reach the relay database: {exc}") from None
        return cls(pool)

    @staticmethod
    async def _migrate(conn: Conn, now_ms: int) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(migrations.VERSION_TABLE)
            cur = await conn.execute("SELECT MAX(version) FROM schema_migrations")
            row = await cur.fetchone()
            applied = int(row[0] or 0) if row else 0
            for step in migrations.pending(Backend.POSTGRESQL, applied):
                await conn.execute(step.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (%s, %s, %s)",
                    (step.version, step.name, now_ms),
                )

    async def close(self) -> None:
        await self._pool.close()

    async def ready(self) -> None:
        try:
            async with self._pool.connection(timeout=5.0) as conn:
                await conn.execute("SELECT 1")
        except (PoolTimeout, psycopg.Error) as exc:
            raise StorageError(f"the relay database does not answer: {exc}") from None

    async def _one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

    async def _all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def schema_version(self) -> int:
        row = await self._one("SELECT MAX(version) FROM schema_migrations", ())
        return int(row[0] or 0) if row else 0

    # Gateways --------------------------------------------------------------------------------

    async def register_gateway(
        self, gateway_id: str, public_key: bytes, owner_key: bytes, now_ms: int
    ) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO gateway (gateway_id, public_key, owner_key, registered_ms)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (gateway_id, public_key, owner_key, now_ms),
            )
            if cur.rowcount == 1:
                await conn.execute(
                    "INSERT INTO log_state (gateway_id, held_size, updated_ms) VALUES (%s, 0, %s)",
                    (gateway_id, now_ms),
                )
                return
            cur = await conn.execute(
                "SELECT owner_key FROM gateway WHERE gateway_id = %s FOR UPDATE", (gateway_id,)
            )
            row = await cur.fetchone()
            if row is None or bytes(row[0]) != owner_key:
                raise OwnerMismatch(f"gateway {gateway_id} belongs to another owner")
            await conn.execute(
                "UPDATE gateway SET public_key = %s WHERE gateway_id = %s",
                (public_key, gateway_id),
            )

    async def gateway(self, gateway_id: str) -> GatewayRecord:
        row = await self._one(
            "SELECT public_key, owner_key FROM gateway WHERE gateway_id = %s", (gateway_id,)
        )
        if row is None:
            raise UnknownGateway(f"gateway {gateway_id!r} is not registered")
        return GatewayRecord(gateway_id, bytes(row[0]), bytes(row[1]))

    async def held_size(self, gateway_id: str) -> int:
        row = await self._one(
            "SELECT held_size FROM log_state WHERE gateway_id = %s", (gateway_id,)
        )
        if row is None:
            raise UnknownGateway(f"gateway {gateway_id!r} is not registered")
        return int(row[0])

    async def claim_nonce(self, nonce: str, expires_ms: int, now_ms: int) -> bool:
        async with self._pool.connection() as conn:
            await self._prune_if_due(conn, now_ms)
            cur = await conn.execute(CLAIM_SQL, (nonce, expires_ms))
            return cur.rowcount == 1

    async def _prune_if_due(self, conn: Conn, now_ms: int) -> None:
        """Delete expired nonces, at most every :data:`PRUNE_EVERY_S` per process (its own
        autocommit statement, outside any upload's transaction)."""
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            await conn.execute("DELETE FROM request_nonce WHERE expires_ms < %s", (now_ms,))

    # The held log ----------------------------------------------------------------------------

    @staticmethod
    async def _lock_log(conn: Conn, gateway_id: str) -> tuple[bytes, int] | None:
        """(gateway key, held size) with the gateway's row locked until the transaction ends."""
        cur = await conn.execute(LOCK_SQL, (gateway_id,))
        row = await cur.fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    @staticmethod
    async def _query_nodes(
        conn: Conn, gateway_id: str, wanted: set[tuple[int, int]]
    ) -> AsyncCursor[tuple[Any, ...]]:
        """One statement for leaves and inner nodes alike (level 0 is the leaf hash)."""
        return await conn.execute(
            "SELECT 0, idx, leaf_hash FROM entry WHERE gateway_id = %s AND idx = ANY(%s)"
            " UNION ALL SELECT n.level, n.idx, n.hash FROM tree_node n"
            " JOIN unnest(%s::smallint[], %s::bigint[]) AS w(level, idx)"
            " ON n.level = w.level AND n.idx = w.idx WHERE n.gateway_id = %s",
            (
                gateway_id,
                [index for level, index in wanted if level == 0],
                [level for level, _ in wanted if level > 0],
                [index for level, index in wanted if level > 0],
                gateway_id,
            ),
        )

    @staticmethod
    async def _keep_nodes(cur: AsyncCursor[tuple[Any, ...]], into: FetchedNodes) -> None:
        for level, idx, digest in await cur.fetchall():
            into.nodes[(int(level), int(idx))] = bytes(digest)

    async def upload(
        self,
        gateway_id: str,
        batch: UploadBatch,
        cosign: Cosigner,
        now_ms: int,
        nonce: NonceClaim | None = None,
    ) -> UploadOutcome:
        # A gateway uploads from the size the relay acknowledged, so the nodes are fetched for
        # a held size of batch.start together with the lock, in one round trip; should the
        # held size differ, the check names what is missing and it is fetched then.
        guess = witness.nodes_for_batch(batch, batch.start, [])
        async with self._pool.connection() as conn:
            if nonce is not None:
                await self._prune_if_due(conn, now_ms)
            return await self._upload(conn, gateway_id, batch, cosign, now_ms, nonce, guess)

    async def _upload(
        self,
        conn: Conn,
        gateway_id: str,
        batch: UploadBatch,
        cosign: Cosigner,
        now_ms: int,
        nonce: NonceClaim | None,
        guess: set[tuple[int, int]],
    ) -> UploadOutcome:
        cp_size = batch.checkpoint.checkpoint.tree_size
        async with conn.pipeline() as pipeline, conn.transaction():
            # The nonce first, before the gateway's lock: a concurrent claim of the same
            # nonce (a replay racing its original) waits on the key's index entry, not while
            # holding the gateway. It commits with the upload, or not at all.
            claimed = (
                None
                if nonce is None
                else await conn.execute(CLAIM_SQL, (nonce.nonce, nonce.expires_ms))
            )
            locked = await conn.execute(LOCK_SQL, (gateway_id,))
            # Statements run in order, so this subquery reads the held size after the
            # lock is ours (READ COMMITTED: a fresh snapshot per statement).
            found = await conn.execute(
                "SELECT tree_size, root_hash, source FROM witnessed, ("
                "SELECT held_size FROM log_state WHERE gateway_id = %s) AS s"
                " WHERE gateway_id = %s AND (tree_size >= %s OR (tree_size > s.held_size"
                " AND tree_size <= GREATEST(s.held_size, %s))) ORDER BY tree_size",
                (gateway_id, gateway_id, cp_size, batch.end),
            )
            nodes_cur = await self._query_nodes(conn, gateway_id, guess)
            await pipeline.sync()
            if claimed is not None and claimed.rowcount != 1:
                raise NonceReplayed("request replayed (nonce already used)")
            state = await locked.fetchone()
            if state is None:
                raise UnknownGateway(f"gateway {gateway_id!r} is not registered")
            key, held = bytes(state[0]), int(state[1])
            seen = [Witnessed(int(r[0]), bytes(r[1]), str(r[2])) for r in await found.fetchall()]
            nodes = FetchedNodes()
            await self._keep_nodes(nodes_cur, nodes)
            verdict = await self._judge(conn, gateway_id, batch, key, held, seen, nodes)
            if isinstance(verdict, Refused):
                if verdict.finding.is_alarm:
                    await self._alarm(conn, gateway_id, verdict, now_ms)
                return UploadOutcome(held, verdict)
            cosignature = cosign(verdict.checkpoint.checkpoint)
            await self._accept(conn, gateway_id, verdict, cosignature, now_ms)
            return UploadOutcome(verdict.new_size, cosignature)

    async def _judge(
        self,
        conn: Conn,
        gateway_id: str,
        batch: UploadBatch,
        key: bytes,
        held: int,
        seen: list[Witnessed],
        nodes: FetchedNodes,
    ) -> Accepted | Refused:
        """The witness checks, fetching whatever held node the first guess did not cover."""
        asked = set(nodes.nodes)
        wanted = witness.nodes_for_batch(batch, held, seen) - asked
        while True:
            if wanted:
                await self._keep_nodes(await self._query_nodes(conn, gateway_id, wanted), nodes)
                asked |= wanted
            try:
                return witness.check_batch(batch, gateway_id, key, nodes, held, seen)
            except NodeMissing as missing:
                # A node asked for and not found is a damaged tree, not a reason to loop.
                wanted = {(missing.level, missing.index)}
                if wanted <= asked:
                    raise StorageError(
                        f"relay tree has no node ({missing.level}, {missing.index})"
                        f" for {gateway_id}"
                    ) from None

    @staticmethod
    async def _accept(
        conn: Conn, gateway_id: str, accepted: Accepted, cosignature: bytes, now_ms: int
    ) -> None:
        """Every write of an accepted batch in one statement. Byte arrays go in binary
        (%b): as text, every byte string would be escaped in Python first."""
        cp = accepted.checkpoint.checkpoint
        await conn.execute(
            "WITH e AS (INSERT INTO entry (gateway_id, idx, sealed, leaf_hash)"
            " SELECT %(g)s, * FROM unnest(%(ei)b::bigint[], %(es)b::bytea[], %(eh)b::bytea[])),"
            " n AS (INSERT INTO tree_node (gateway_id, level, idx, hash)"
            " SELECT %(g)s, * FROM unnest(%(nl)b::smallint[], %(ni)b::bigint[],"
            " %(nh)b::bytea[])),"
            " w AS (INSERT INTO witnessed (gateway_id, tree_size, root_hash, time_ms, signature,"
            " source, cosignature) VALUES (%(g)s, %(size)s, %(root)s, %(time)s, %(sig)s,"
            " 'gateway', %(cosig)s) ON CONFLICT DO NOTHING)"
            " UPDATE log_state SET held_size = %(held)s, updated_ms = %(now)s"
            " WHERE gateway_id = %(g)s",
            {
                "g": gateway_id,
                "ei": [i for i, _, _ in accepted.leaves],
                "es": [sealed for _, sealed, _ in accepted.leaves],
                "eh": [digest for _, _, digest in accepted.leaves],
                "nl": [n.level for n in accepted.nodes],
                "ni": [n.index for n in accepted.nodes],
                "nh": [n.hash for n in accepted.nodes],
                "size": cp.tree_size,
                "root": cp.root_hash,
                "time": cp.time_ms,
                "sig": stored_signature(accepted.checkpoint),
                "cosig": cosignature,
                "held": accepted.new_size,
                "now": now_ms,
            },
        )

    async def witness_receipt(
        self, receipt: WireReceipt, unknown_key: bytes, now_ms: int
    ) -> Refused | None:
        async with self._pool.connection() as conn, conn.transaction():
            # An unknown gateway: a key nobody holds, an empty log, the same queries.
            state = await self._lock_log(conn, receipt.gateway)
            key, held = (unknown_key, 0) if state is None else state
            size = receipt.checkpoint.checkpoint.tree_size
            cur = await conn.execute(
                "SELECT tree_size, root_hash, source FROM witnessed"
                " WHERE gateway_id = %s AND tree_size = %s",
                (receipt.gateway, size),
            )
            same = [Witnessed(int(r[0]), bytes(r[1]), str(r[2])) for r in await cur.fetchall()]
            nodes = FetchedNodes()
            wanted = witness.nodes_for_receipt(receipt, held)
            if wanted:
                await self._keep_nodes(
                    await self._query_nodes(conn, receipt.gateway, wanted), nodes
                )
            try:
                refused = witness.check_receipt(receipt, key, nodes, held, same)
            except NodeMissing as missing:
                raise StorageError(
                    f"relay tree has no node ({missing.level}, {missing.index})"
                    f" for {receipt.gateway}"
                ) from None
            if refused is not None:
                if refused.finding.is_alarm:
                    await self._alarm(conn, receipt.gateway, refused, now_ms)
                return refused
            await self._witness(conn, receipt.gateway, receipt.checkpoint, "receipt", None)
            return None

    @staticmethod
    async def _alarm(conn: Conn, gateway_id: str, refused: Refused, now_ms: int) -> None:
        await conn.execute(
            "INSERT INTO alarm (gateway_id, time_ms, code, detail) VALUES (%s, %s, %s, %s)",
            (gateway_id, now_ms, refused.finding.value, refused.detail),
        )

    @staticmethod
    async def _witness(
        conn: Conn,
        gateway_id: str,
        signed: SignedCheckpoint,
        source: str,
        cosignature: bytes | None,
    ) -> None:
        cp = signed.checkpoint
        await conn.execute(
            "INSERT INTO witnessed (gateway_id, tree_size, root_hash, time_ms, signature, source,"
            " cosignature) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                gateway_id,
                cp.tree_size,
                cp.root_hash,
                cp.time_ms,
                stored_signature(signed),
                source,
                cosignature,
            ),
        )

    async def witnessed(self, gateway_id: str) -> list[WitnessedRecord]:
        rows = await self._all(
            "SELECT tree_size, root_hash, time_ms, signature, source, cosignature FROM witnessed"
            " WHERE gateway_id = %s ORDER BY tree_size, source",
            (gateway_id,),
        )
        return [
            WitnessedRecord(
                signed_from_row(gateway_id, int(r[0]), bytes(r[1]), int(r[2]), bytes(r[3])),
                str(r[4]),
                None if r[5] is None else bytes(r[5]),
            )
            for r in rows
        ]

    async def entries(self, gateway_id: str, since: int, limit: int) -> list[tuple[int, bytes]]:
        rows = await self._all(
            "SELECT idx, sealed FROM entry WHERE gateway_id = %s AND idx >= %s"
            " ORDER BY idx LIMIT %s",
            (gateway_id, since, limit),
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    # Alarms and the mailbox ------------------------------------------------------------------

    async def alarms(self, gateway_id: str) -> list[Alarm]:
        rows = await self._all(
            "SELECT id, gateway_id, time_ms, code, detail FROM alarm WHERE gateway_id = %s"
            " ORDER BY id",
            (gateway_id,),
        )
        return [Alarm(int(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]

    async def post_mail(self, gateway_id: str, sealed: bytes, now_ms: int) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            if await self._lock_log(conn, gateway_id) is None:
                raise UnknownGateway(f"gateway {gateway_id!r} is not registered")
            cur = await conn.execute(
                "INSERT INTO mail (gateway_id, seq, sealed, posted_ms)"
                " SELECT %s, COALESCE(MAX(seq), 0) + 1, %s, %s FROM mail WHERE gateway_id = %s"
                " RETURNING seq",
                (gateway_id, sealed, now_ms, gateway_id),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])

    async def mail_after(self, gateway_id: str, after: int, limit: int) -> list[MailItem]:
        rows = await self._all(
            "SELECT seq, sealed, posted_ms FROM mail WHERE gateway_id = %s AND seq > %s"
            " ORDER BY seq LIMIT %s",
            (gateway_id, after, limit),
        )
        return [MailItem(int(r[0]), bytes(r[1]), int(r[2])) for r in rows]

    # The standard witness (cloud.tlog_witness) -------------------------------------------------

    async def add_witness_log(self, origin: str, vkey: str, now_ms: int) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO witness_log (origin, vkey, added_ms) VALUES (%s, %s, %s)"
                " ON CONFLICT (origin) DO UPDATE SET vkey = excluded.vkey",
                (origin, vkey, now_ms),
            )

    async def witness_log_vkey(self, origin: str) -> str | None:
        row = await self._one("SELECT vkey FROM witness_log WHERE origin = %s", (origin,))
        return None if row is None else str(row[0])

    async def witness_add_checkpoint(self, origin: str, step: WitnessStep, now_ms: int) -> None:
        digest = origin_hash(origin)
        # The origin's row may not exist yet, so it cannot be locked: a transaction-scoped
        # advisory lock on the origin's hash serialises add-checkpoints for it instead.
        lock = int.from_bytes(bytes.fromhex(digest)[:8], "big", signed=True)
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            cur = await conn.execute(
                "SELECT tree_size, root_hash FROM witness_latest WHERE origin = %s", (origin,)
            )
            row = await cur.fetchone()
            kept = step(None if row is None else (int(row[0]), bytes(row[1])))
            if kept is not None:
                size, root, note = kept
                await conn.execute(
                    "INSERT INTO witness_latest"
                    " (origin, origin_hash, tree_size, root_hash, note, updated_ms)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (origin) DO UPDATE SET"
                    " tree_size = excluded.tree_size, root_hash = excluded.root_hash,"
                    " note = excluded.note, updated_ms = excluded.updated_ms",
                    (origin, digest, size, root, note, now_ms),
                )

    async def witness_checkpoint(self, origin_hash: str) -> str | None:
        row = await self._one(
            "SELECT note FROM witness_latest WHERE origin_hash = %s", (origin_hash,)
        )
        return None if row is None else str(row[0])
