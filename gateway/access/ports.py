"""What the access layer needs from the rest of the gateway: the ports and their records.

:class:`Ledger` is the durable state (``gateway.access.ledger.StoreLedger`` adapts ``store/``
to it; the tests have an in-memory one), :class:`EntryWitness` the camera
(``gateway.access.filming.EntryCamera``). Both are Protocols: the access layer imports no
store, camera or transport code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from gateway.access.session import AuditValue, SessionFacts, SessionState
from gateway.trust.keys import TrustAnchors
from gateway.trust.verification import ChallengeRecord, HeldRevocations, RevocationList


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as the store keeps it, enough to reconcile it after a restart."""

    facts: SessionFacts
    state: SessionState
    holder_key: bytes
    created_at: datetime
    updated_at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ChallengeTaken:
    """What taking a challenge read in the same transaction: the consumed challenge (None:
    unknown or already used) and the time floor as of that moment (None: an empty log)."""

    challenge: ChallengeRecord | None
    time_floor: datetime | None


@dataclass(frozen=True, slots=True)
class FloorReset:
    """The owner's reset of the time floor: the floor before and after (Unix ms), and whether
    it moved (not when it was not above the local clock; nothing is recorded then)."""

    old_ms: int
    new_ms: int
    changed: bool

    def to_json(self) -> dict[str, Any]:
        return {"reset": self.changed, "old_floor_ms": self.old_ms, "floor_ms": self.new_ms}


class Ledger(Protocol):
    """The durable state the runner reads and writes; every write is durable on return.

    Any method may raise ``store.errors.StoreError``: the runner fails closed on it.
    """

    async def append(
        self,
        entries: Sequence[tuple[str, Mapping[str, AuditValue]]],
        session: SessionRecord,
        use: tuple[str, str, int] | None = None,
    ) -> bool:
        """Append audit entries and save the session's state in one durable transaction.

        With ``use`` = (issuer key id, ticket id, max uses), first count one use atomically
        in the same transaction; if the uses are exhausted nothing is written and the answer
        is False. Uses are counted per issuer and ticket id, never per id alone.
        """

    async def journal(
        self,
        entries: Sequence[tuple[str, Mapping[str, AuditValue]]],
        session: SessionRecord,
        use: tuple[str, str, int] | None = None,
    ) -> None:
        """Keep a batch :meth:`append` could not write (the store failed) in the outage
        journal, durably, with the use it counted; raises ``StoreError`` if that fails too.

        Until the journal is replayed, every :meth:`append` replays it first, in the same
        transaction, so the store never takes a session's later step before its earlier
        ones (issue 11, finding 4).
        """

    def outage_pending(self) -> bool:
        """The outage journal holds batches the store has not taken yet."""

    def journaled_uses(self) -> list[tuple[str, str]]:
        """(issuer key id, ticket id) of every use in the outage journal not replayed yet."""

    async def replay(self) -> int:
        """Write the outage journal into the store (idempotent: a record is applied once,
        whatever crashes), with a ``store.outage_replayed`` entry; the records replayed.
        Raises ``StoreError`` while the store still cannot write."""

    async def settle(self, facts: SessionFacts, state: str) -> None:
        """Close an unfinished session row no live session is behind, as ``state``, with a
        ``session.settled`` entry saying so (after an outage kept its last steps out)."""

    async def issue_challenge(self, ttl: timedelta, now: datetime) -> ChallengeRecord: ...

    async def take_challenge(self, nonce: bytes, now: datetime) -> ChallengeTaken:
        """Consume a challenge atomically (it is returned once, then never again) and read
        the time floor in the same transaction: a request costs one store round trip."""

    async def time_floor(self) -> datetime | None:
        """The newest time the audit log holds (the clock rule's floor), None when empty."""

    async def raise_time_floor(
        self, claimed: datetime, now: datetime, skew: timedelta
    ) -> datetime | None:
        """An outside source signed that it is ``claimed``: in one transaction, raise the floor
        by :func:`gateway.trust.clock.raised_floor_ms` (never past ``now + skew``) and record
        ``clock.floor_raised`` at the new floor if it rose. The floor afterwards."""

    async def reset_time_floor(self, now: datetime) -> FloorReset:
        """The owner's reset: if the floor is above ``now``, set it to ``now`` and record
        ``clock.floor_reset`` (old and new values) in the same transaction."""

    async def revocations(self, anchors: TrustAnchors) -> HeldRevocations:
        """Every revocation held (the union of the lists accepted, each entry until its
        latest ``until``); ``anchors`` verify a list held in an older format."""

    async def add_revocations(self, rl: RevocationList, token: str) -> HeldRevocations:
        """Add a verified list for this gateway to those held (nothing held is ever taken
        away or shortened); what is held afterwards."""

    async def unfinished_sessions(self) -> list[SessionRecord]: ...

    async def record(self, kind: str, body: Mapping[str, AuditValue]) -> None:
        """One audit entry outside any session (owner acts, start-up, alarms)."""

    async def events(self, since: int, limit: int) -> list[dict[str, Any]]:
        """Audit entries from index ``since`` on, at most ``limit``, each with ``verified``:
        whether its shown fields were checked against the signed leaf."""

    async def receipt(self, session: str) -> dict[str, Any] | None:
        """A signed checkpoint and inclusion proof for the session's latest entry."""

    def bind_visit(self, session: str, secret: bytes) -> None:
        """The session's visit secret (``store.commitment.visit_secret`` of the visitor's
        proof): every entry the session writes from now on carries its visit tag, so the
        visitor's phone can find its own visit in the log (docs/api.md, "Receipts")."""


class EntryWitness(Protocol):
    """The camera as the runner sees it; every method returns promptly (no I/O waits)."""

    def live(self, door: str) -> bool:
        """Every camera that watches ``door`` is live (False if none does)."""

    def grant_scene(self, door: str) -> Mapping[str, AuditValue]: ...

    def relock_scene(self, door: str) -> Mapping[str, AuditValue]: ...

    async def session_granted(self, session: str, door: str) -> None:
        """Start the clip (from the pre-roll) and the grant snapshot; before the unlock."""

    def door_unlocked(self, session: str, door: str) -> None:
        """The unlock is over (the session is open): work kept off the unlock may start."""

    def door_opened(self, session: str, door: str) -> None: ...

    def session_ended(self, session: str, door: str, state: str) -> None:
        """Finish the clip (post-roll) and take the closing snapshot, off the access path."""
