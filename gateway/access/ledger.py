"""The access layer's view of the store: :class:`gateway.access.ports.Ledger` over
``store.Store``.

Each method is one store transaction (one executor hop). :meth:`StoreLedger.append` is the
write-ahead step: the session's audit entries and its new state commit together, durably,
before the runner performs the next effect.

Denied requests are not access sessions in the table (they never held a door); their audit
entry alone records them.
"""

from __future__ import annotations

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
from gateway.trust.verification import ChallengeRecord
from store.db import Store
from store.state import ChallengeOutcome, RevocationEntry
from store.transaction import StoreTransaction


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


class StoreLedger:
    """The production :class:`~gateway.access.ports.Ledger`."""

    def __init__(self, store: Store, gateway_id: str) -> None:
        self.store = store
        self.gateway_id = gateway_id
        self._known: set[str] = set()
        self._last_index: OrderedDict[str, int] = OrderedDict()

    async def append(
        self,
        entries: Sequence[tuple[str, Mapping[str, AuditValue]]],
        session: SessionRecord,
        use: tuple[str, str, int] | None = None,
    ) -> bool:
        facts = session.facts
        known = facts.session in self._known
        terminal = session.state in FINISHED_STATES

        def write(tx: StoreTransaction) -> bool:
            if use is not None and not tx.state.consume_use(*use, tx.now_ms()).granted:
                return False
            index: int | None = None
            for kind, body in entries:
                index = tx.append(kind, dict(body)).entry.index
            if index is not None:
                self._last_index[facts.session] = index
                while len(self._last_index) > 1000:
                    self._last_index.popitem(last=False)
            now = tx.now_ms()
            if not known:
                if session.state is SessionState.DENIED:
                    return True
                tx.state.open_session(
                    facts.session,
                    facts.door,
                    session.state.value,
                    now,
                    ticket_id=facts.jti,
                    audit_index=index,
                )
                if terminal:
                    tx.state.set_session_state(
                        facts.session, session.state.value, now, terminal=True
                    )
                return True
            tx.state.set_session_state(
                facts.session, session.state.value, now, terminal=terminal, audit_index=index
            )
            return True

        written = await self.store.transact(write)
        if written and not terminal:
            self._known.add(facts.session)
        elif terminal:
            self._known.discard(facts.session)
        return written

    async def receipt(self, session: str) -> dict[str, Any] | None:
        """The visitor's receipt: the session's latest entry, a signed checkpoint covering it
        and the inclusion proof (docs/cloud.md, "Receipts": the phone is a witness)."""
        index = self._last_index.get(session)
        if index is None:
            return None
        return (await self.store.receipt(index)).to_json()

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
            self._known.add(r.session_id)
            try:
                state = SessionState(r.state)
            except ValueError:
                state = SessionState.OPEN  # unknown: assume the worst, the door may be open
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
        only when every shown field is what the leaf commits to (docs/audit-log.md)."""
        return [checked.to_json() for checked in await self.store.checked_entries(since, limit)]
