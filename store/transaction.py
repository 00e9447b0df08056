"""One writer transaction: audit appends, checkpoints and state changes that commit together.

The gateway's write-ahead rule (session invariant 1, :mod:`gateway.access.session`) needs "the
``granted`` event is durable" and "the session is in state ``granted``" to be one commit. A
function given to ``Store.transact`` receives a ``StoreTransaction`` and makes any number of
these calls; they all commit, or none do. The function runs in the writer's thread: it must
not await or block on anything but the database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping

from store import audit_log
from store.audit_log import StoredEntry
from store.checkpoint import CheckpointSigner, SignedCheckpoint
from store.commitment import CommitmentKey
from store.devices import DeviceTables
from store.entry import EntrySealer, JsonValue
from store.errors import IntegrityViolation
from store.invitations import InvitationTables
from store.merkle import MerkleFrontier
from store.push import PushTables
from store.state import StateTables


class StoreTransaction:
    """The audit log and the state tables, inside one open writer transaction."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        frontier: MerkleFrontier,
        *,
        signer: CheckpointSigner | None,
        seal: EntrySealer | None,
        commitment_key: CommitmentKey | None = None,
        checkpoint_every: int,
        clock: Callable[[], int],
    ) -> None:
        self._conn = conn
        self.frontier = frontier
        self._signer = signer
        self._seal = seal
        self._commitment_key = commitment_key
        self._checkpoint_every = checkpoint_every
        self._clock = clock
        self.state = StateTables(conn)
        #: The owner's devices and enrollment links (store.devices).
        self.devices = DeviceTables(conn)
        #: The owner's invitations of visitors (store.invitations).
        self.invitations = InvitationTables(conn)
        #: The owner's devices' Web Push subscriptions (store.push).
        self.push = PushTables(conn)

    def now_ms(self) -> int:
        return self._clock()

    @property
    def tree_size(self) -> int:
        return self.frontier.size

    def append(
        self,
        kind: str,
        body: Mapping[str, JsonValue],
        time_ms: int | None = None,
        *,
        visit: bytes | None = None,
    ) -> StoredEntry:
        """Append an audit entry; every ``checkpoint_every`` entries also sign a checkpoint.

        ``visit``: the visit secret of the session the entry belongs to (leaf format 3,
        ``store.commitment.visit_secret``); it is used for the tag and not kept."""
        at = self._clock() if time_ms is None else time_ms
        stored = audit_log.insert_entry(
            self._conn, self.frontier, kind, body, at, self._seal, self._commitment_key, visit
        )
        if (
            self._signer is not None
            and self._checkpoint_every > 0
            and self.frontier.size % self._checkpoint_every == 0
        ):
            audit_log.insert_checkpoint(self._conn, self.frontier, self._signer, at)
        return stored

    def checkpoint(self, time_ms: int | None = None) -> SignedCheckpoint:
        """Sign the tree as it stands (or return the checkpoint already made at this size)."""
        at = self._clock() if time_ms is None else time_ms
        return audit_log.insert_checkpoint(self._conn, self.frontier, self._signer, at)

    def checkpoint_at(self, size: int, time_ms: int | None = None) -> SignedCheckpoint:
        """Sign the log's first ``size`` entries (a prefix; or reuse the one at that size)."""
        at = self._clock() if time_ms is None else time_ms
        return audit_log.insert_checkpoint_at(self._conn, self.frontier, self._signer, size, at)

    def ack_tree_size(self, size: int, now_ms: int | None = None) -> None:
        """Record the cloud's acknowledged tree size: never beyond the log, never backwards."""
        if not 0 <= size <= self.frontier.size:
            raise IntegrityViolation(
                f"acknowledged size {size} is beyond the log's {self.frontier.size} entries"
            )
        self.state.ack_tree_size(size, self._clock() if now_ms is None else now_ms)
