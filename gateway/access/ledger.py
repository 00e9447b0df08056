"""The access layer's view of the store: :class:`gateway.access.ports.Ledger` over
``store.Store``.

Each method is one store transaction (one executor hop). :meth:`StoreLedger.append` is the
write-ahead step: the session's audit entries and its new state commit together, durably,
before the runner performs the next effect.

Denied requests are not access sessions in the table (they never held a door); their audit
entry alone records them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.access.ports import ChallengeTaken, FloorReset, SessionRecord
from gateway.access.session import FINISHED_STATES, AuditValue, SessionFacts, SessionState
from gateway.trust.clock import raised_floor_ms
from gateway.trust.keys import TrustAnchors
from gateway.trust.reasons import TicketError
from gateway.trust.revocation import (
    HeldRevocations,
    Revocation,
    RevocationList,
    RevokedKind,
    verify_legacy_revocations,
)
from gateway.trust.seal import PADDING_KIND
from gateway.trust.verification import ChallengeRecord
from store.db import Store
from store.errors import DoorBusy, StorageIOError, StoreError
from store.outage_journal import JournaledUse, OutageJournal, OutageRecord
from store.state import ChallengeOutcome, RevocationEntry
from store.transaction import StoreTransaction

log = logging.getLogger("threshold.access")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ms_of(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _held(entries: list[RevocationEntry], seq: int | None) -> HeldRevocations:
    return HeldRevocations.of(
        (Revocation(RevokedKind(e.kind), e.value, _dt(e.until_ms)) for e in entries), seq
    )


def _state(text: str) -> SessionState:
    try:
        return SessionState(text)
    except ValueError:
        return SessionState.OPEN  # unknown: assume the worst, the door may be open


def _save_session(
    tx: StoreTransaction,
    facts: SessionFacts,
    state: SessionState,
    index: int | None,
    *,
    replaying: bool = False,
) -> None:
    """Save a session's state after a batch of its entries (a denial gets no row).

    ``replaying``: a journaled batch. A row it cannot write (already closed, or its door
    held by a row left open) is skipped, logged: the entries are in the log, and a replay
    that always failed would keep every later write out of the store.
    """
    now = tx.now_ms()
    terminal = state in FINISHED_STATES
    row = tx.state.access_session(facts.session)
    if row is None:
        if state is SessionState.DENIED:
            return
        try:
            tx.state.open_session(
                facts.session, facts.door, state.value, now, ticket_id=facts.jti, audit_index=index
            )
        except DoorBusy:
            if not replaying:
                raise
            log.error(
                "outage replay: session %s has no row (door %s held)", facts.session, facts.door
            )
            return
        if terminal:
            tx.state.set_session_state(facts.session, state.value, now, terminal=True)
        return
    if replaying and row.terminal:
        log.error("outage replay: session %s was already closed", facts.session)
        return
    tx.state.set_session_state(
        facts.session, state.value, now, terminal=terminal, audit_index=index
    )


class StoreLedger:
    """The production :class:`~gateway.access.ports.Ledger`."""

    def __init__(
        self,
        store: Store,
        gateway_id: str,
        journal: OutageJournal | None = None,
        *,
        scheduled_receipts: bool = False,
    ) -> None:
        self.store = store
        self.gateway_id = gateway_id
        self._journal = journal
        #: The upload is paced (docs/privacy.md): receipts wait for a scheduled checkpoint.
        self._scheduled_receipts = scheduled_receipts
        #: Held across every session write, journal append and replay, so a record cannot
        #: be added between a replay's reading of the journal and its wipe.
        self._outage = asyncio.Lock()
        self._last_index: OrderedDict[str, int] = OrderedDict()
        #: Visit secrets of the live sessions (never stored: only the tags derived from them).
        self._visits: OrderedDict[str, bytes] = OrderedDict()

    def bind_visit(self, session: str, secret: bytes) -> None:
        self._visits[session] = secret
        while len(self._visits) > 1000:
            self._visits.popitem(last=False)

    async def append(
        self,
        entries: Sequence[tuple[str, Mapping[str, AuditValue]]],
        session: SessionRecord,
        use: tuple[str, str, int] | None = None,
    ) -> bool:
        facts = session.facts
        visit = self._visits.get(facts.session)
        async with self._outage:
            pending = self._pending()

            def write(tx: StoreTransaction) -> bool:
                # What the outage journal holds goes first, in this transaction: the store
                # never takes a session's later step before its earlier ones.
                self._replay(tx, pending)
                if use is not None and not tx.state.consume_use(*use, tx.now_ms()).granted:
                    return False
                index: int | None = None
                for kind, body in entries:
                    index = tx.append(kind, dict(body), visit=visit).entry.index
                if index is not None:
                    self._last_index[facts.session] = index
                    while len(self._last_index) > 1000:
                        self._last_index.popitem(last=False)
                _save_session(tx, facts, session.state, index)
                return True

            written = await self.store.transact(write)
            if pending:
                await self._wipe_journal()
        return written

    # -- the outage journal (issue 11, finding 4) ----------------------------------------------

    async def journal(
        self,
        entries: Sequence[tuple[str, Mapping[str, AuditValue]]],
        session: SessionRecord,
        use: tuple[str, str, int] | None = None,
    ) -> None:
        journal = self._journal
        if journal is None:
            raise StorageIOError("this gateway keeps no outage journal")
        facts = session.facts
        async with self._outage:
            await asyncio.to_thread(
                journal.append,
                at_ms=_ms(session.updated_at),
                session=facts.session,
                door=facts.door,
                ticket_id=facts.jti,
                state=session.state.value,
                terminal=session.state in FINISHED_STATES,
                entries=tuple((kind, dict(body)) for kind, body in entries),
                use=None if use is None else JournaledUse(*use),
            )

    def outage_pending(self) -> bool:
        return bool(self._pending())

    def journaled_uses(self) -> list[tuple[str, str]]:
        return [(r.use.issuer, r.use.ticket_id) for r in self._pending() if r.use is not None]

    async def replay(self) -> int:
        async with self._outage:
            pending = self._pending()
            if not pending:
                return 0
            await self.store.transact(lambda tx: self._replay(tx, pending))
            await self._wipe_journal()
        return len(pending)

    def _pending(self) -> tuple[OutageRecord, ...]:
        return () if self._journal is None else self._journal.pending

    async def _wipe_journal(self) -> None:
        journal = self._journal
        assert journal is not None
        try:
            await asyncio.to_thread(journal.wipe)
        except StoreError as exc:
            # The database's mark already says these records are in: a later replay skips
            # them, so nothing is counted twice.
            log.error("outage journal replayed but not wiped (%s)", exc.code)

    def _replay(self, tx: StoreTransaction, records: tuple[OutageRecord, ...]) -> None:
        """Apply the journal's records not applied yet, and move the mark (idempotent)."""
        journal = self._journal
        if journal is None or not records:
            return
        journal_id = journal.journal_id
        done = tx.state.outage_applied(journal_id)
        todo = [r for r in records if r.seq > done]
        if not todo:
            return
        over_limit = 0
        for record in todo:
            if record.use is not None:
                u = record.use
                # The door already opened: the use is counted whatever, and a use beyond the
                # ticket's limit is said in the summary entry.
                if not tx.state.consume_use(u.issuer, u.ticket_id, u.max_uses, tx.now_ms()).granted:
                    over_limit += 1
            index: int | None = None
            for kind, body in record.entries:
                index = tx.append(kind, {**body, "journaled_ms": record.at_ms}).entry.index
            facts = SessionFacts(record.session, record.door, record.ticket_id, "", "", 0)
            _save_session(tx, facts, _state(record.state), index, replaying=True)
        tx.state.mark_outage_applied(journal_id, todo[-1].seq, tx.now_ms())
        tx.append(
            "store.outage_replayed",
            {
                "journal": journal_id,
                "records": len(todo),
                "entries": sum(len(r.entries) for r in todo),
                "sessions": len({r.session for r in todo}),
                "uses": sum(1 for r in todo if r.use is not None),
                "uses_over_limit": over_limit,
                "from_ms": todo[0].at_ms,
                "to_ms": todo[-1].at_ms,
            },
        )

    async def settle(self, facts: SessionFacts, state: str) -> None:
        def close(tx: StoreTransaction) -> None:
            row = tx.state.access_session(facts.session)
            if row is None or row.terminal:
                return
            entry = tx.append(
                "session.settled",
                {
                    "session": facts.session,
                    "door": row.door,
                    "jti": row.ticket_id,
                    "was": row.state,
                    "state": state,
                    "why": "outage",
                },
            )
            tx.state.set_session_state(
                facts.session, state, tx.now_ms(), terminal=True, audit_index=entry.entry.index
            )

        async with self._outage:
            await self.store.transact(close)

    async def receipt(self, session: str) -> dict[str, Any] | None:
        """The visitor's receipt: the session's latest entry, a signed checkpoint covering it
        and the inclusion proof (docs/cloud.md, "Receipts": the phone is a witness). With
        paced uploads the checkpoint is the first scheduled one covering the entry, and
        until its slot has closed the receipt is pending (docs/api.md, "Receipts")."""
        index = self._last_index.get(session)
        if index is None:
            return None
        receipt = await self.store.receipt(index, scheduled=self._scheduled_receipts)
        return receipt.to_json()

    async def issue_challenge(self, ttl: timedelta, now: datetime) -> ChallengeRecord:
        nonce = await self.store.issue_challenge(int(ttl.total_seconds() * 1000))
        return ChallengeRecord(nonce, self.gateway_id, now + ttl)

    async def take_challenge(self, nonce: bytes, now: datetime) -> ChallengeTaken:
        if len(nonce) != 32:
            return ChallengeTaken(None, await self.time_floor())

        def take(tx: StoreTransaction) -> tuple[ChallengeOutcome, int]:
            return tx.state.consume_challenge(nonce, tx.now_ms()), tx.state.time_floor()

        outcome, floor_ms = await self.store.transact(take)
        floor = None if floor_ms <= 0 else _dt(floor_ms)
        if outcome is ChallengeOutcome.CONSUMED:
            # The store checked expiry when it consumed it; the proof check needs a time too.
            return ChallengeTaken(
                ChallengeRecord(nonce, self.gateway_id, now + timedelta(seconds=1)), floor
            )
        if outcome is ChallengeOutcome.EXPIRED:
            return ChallengeTaken(
                ChallengeRecord(nonce, self.gateway_id, now - timedelta(seconds=1)), floor
            )
        return ChallengeTaken(None, floor)

    async def time_floor(self) -> datetime | None:
        ms = await self.store.time_floor()
        return None if ms <= 0 else _dt(ms)

    async def raise_time_floor(
        self, claimed: datetime, now: datetime, skew: timedelta
    ) -> datetime | None:
        # Read, rule and write in one transaction: the store is the floor's one owner, and
        # nothing between the read and the write can move it. The entry is stamped with the
        # new floor, so the store's floor (the newest time in the log) takes it.
        claimed_ms, now_ms, skew_ms = _ms(claimed), _ms(now), _ms_of(skew)

        def raise_(tx: StoreTransaction) -> int:
            floor_ms = tx.state.time_floor()
            new_ms = raised_floor_ms(floor_ms, now_ms, claimed_ms, skew_ms)
            if new_ms > floor_ms:
                body = {"floor_ms": new_ms, "claimed_ms": claimed_ms, "local_ms": now_ms}
                tx.append("clock.floor_raised", body, new_ms)
            return new_ms

        new_ms = await self.store.transact(raise_)
        return None if new_ms <= 0 else _dt(new_ms)

    async def reset_time_floor(self, now: datetime) -> FloorReset:
        now_ms = _ms(now)

        def reset(tx: StoreTransaction) -> FloorReset:
            old_ms = tx.state.time_floor()
            if old_ms <= now_ms:
                return FloorReset(old_ms, old_ms, changed=False)
            # The entry first (stamped now, so it leaves the floor where it is), then the
            # floor itself: both commit together or neither does.
            tx.append("clock.floor_reset", {"old_floor_ms": old_ms, "new_floor_ms": now_ms}, now_ms)
            tx.state.reset_time_floor(now_ms)
            return FloorReset(old_ms, now_ms, changed=True)

        return await self.store.transact(reset)

    async def revocations(self, anchors: TrustAnchors) -> HeldRevocations:
        """Everything held; a format 1 list held from before the upgrade is carried over
        first (idempotent: its entries' ``until`` depends only on the list)."""
        record = await self.store.revocation_list()
        if record is not None:
            try:
                legacy = verify_legacy_revocations(record.token, anchors)
            except TicketError:
                pass  # the newest list held is format 2: its entries are in the store
            else:
                return await self.add_revocations(legacy, record.token)
        entries = await self.store.revocation_entries()
        return _held(entries, None if record is None else record.seq)

    async def add_revocations(self, rl: RevocationList, token: str) -> HeldRevocations:
        """Add a verified list to the store's union; what is held afterwards."""
        _, entries = await self.store.add_revocations(
            rl.seq,
            token,
            [RevocationEntry(e.kind.value, e.value, _ms(e.until)) for e in rl.entries],
        )
        record = await self.store.revocation_list()
        return _held(entries, None if record is None else record.seq)

    async def unfinished_sessions(self) -> list[SessionRecord]:
        records = []
        for r in await self.store.unclosed_sessions():
            state = _state(r.state)
            records.append(
                SessionRecord(
                    facts=SessionFacts(
                        session=r.session_id,
                        door=r.door,
                        jti=r.ticket_id or "",
                        subject="",
                        purpose="",
                        open_s=0,
                    ),
                    state=state,
                    holder_key=b"",
                    created_at=_dt(r.opened_ms),
                    updated_at=_dt(r.updated_ms),
                )
            )
        return records

    async def record(self, kind: str, body: Mapping[str, AuditValue]) -> None:
        await self.store.append(kind, dict(body))

    async def events(self, since: int, limit: int) -> list[dict[str, Any]]:
        """Each entry as the store checked it against its signed leaf: ``verified`` is True
        only when every shown field is what the leaf commits to (docs/audit-log.md). The paced
        upload's padding (docs/privacy.md) is left out: it says nothing about the home."""
        entries = await self.store.checked_entries(since, limit, hide_kind=PADDING_KIND)
        return [checked.to_json() for checked in entries]
