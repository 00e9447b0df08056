"""An in-memory :class:`gateway.access.ports.Ledger`: the access layer's durable state as plain
Python, for runner and service tests without SQLite.

It keeps the Protocol's promises the way the store does: an append with a ``use`` counts the
use first (per issuer and ticket id) and writes nothing when the uses are exhausted; a
challenge is taken once; the time floor is the newest time written; revocations are the union
of the lists added, each entry until its latest ``until``. ``failing`` makes every write raise
a ``StoreError`` (the disk gone), which is what the fail-closed rules are about.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.access.ports import ChallengeTaken, FloorReset, SessionRecord
from gateway.access.session import FINISHED_STATES, AuditValue, SessionFacts, SessionState
from gateway.trust.clock import raised_floor_ms
from gateway.trust.keys import TrustAnchors
from gateway.trust.verification import ChallengeRecord, HeldRevocations, RevocationList
from store.errors import StorageIOError


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ms_of(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Written:
    """One audit entry as the in-memory ledger holds it."""

    index: int
    time: datetime
    kind: str
    body: dict[str, AuditValue]


class MemoryLedger:
    def __init__(
        self, gateway_id: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.gateway_id = gateway_id
        self.clock = clock
        self.entries: list[Written] = []
        self.sessions: dict[str, SessionRecord] = {}
        self.uses: dict[tuple[str, str], int] = {}
        self.failing = False
        #: Batches kept while ``failing`` (the outage journal), and whether that fails too.
        self.journaled: list[
            tuple[
                list[tuple[str, dict[str, AuditValue]]], SessionRecord, tuple[str, str, int] | None
            ]
        ] = []
        self.journal_failing = False
        self._challenges: dict[bytes, ChallengeRecord] = {}
        self._floor: datetime | None = None
        self.revocation_tokens: list[str] = []
        self.visits: dict[str, bytes] = {}
        self._revocations = HeldRevocations()

    def kinds(self, session: str | None = None) -> list[str]:
        return [e.kind for e in self.entries if session is None or e.body.get("session") == session]

    def _check(self) -> None:
        if self.failing:
            raise StorageIOError("the in-memory disk is gone")

    def _write(self, kind: str, body: Mapping[str, AuditValue], at: datetime) -> None:
        self.entries.append(Written(len(self.entries), at, kind, dict(body)))
        if self._floor is None or at > self._floor:
            self._floor = at

    async def append(
        self,
        entries: Sequence[tuple[str, Mapping[str, AuditValue]]],
        session: SessionRecord,
        use: tuple[str, str, int] | None = None,
    ) -> bool:
        self._check()
        self._replay_now()
        if use is not None:
            issuer_kid, jti, max_uses = use
            counted = self.uses.get((issuer_kid, jti), 0)
            if counted >= max_uses:
                return False
            self.uses[(issuer_kid, jti)] = counted + 1
        now = self.clock()
        for kind, body in entries:
            self._write(kind, body, now)
        self.sessions[session.facts.session] = session
        return True

    async def journal(
        self,
        entries: Sequence[tuple[str, Mapping[str, AuditValue]]],
        session: SessionRecord,
        use: tuple[str, str, int] | None = None,
    ) -> None:
        if self.journal_failing:
            raise StorageIOError("the in-memory journal is gone too")
        self.journaled.append(([(k, dict(b)) for k, b in entries], session, use))

    def outage_pending(self) -> bool:
        return bool(self.journaled)

    def journaled_uses(self) -> list[tuple[str, str]]:
        return [(u[0], u[1]) for _, _, u in self.journaled if u is not None]

    async def replay(self) -> int:
        self._check()
        return self._replay_now()

    def _replay_now(self) -> int:
        count = len(self.journaled)
        if not count:
            return 0
        now = self.clock()
        for entries, session, use in self.journaled:
            if use is not None:
                self.uses[(use[0], use[1])] = self.uses.get((use[0], use[1]), 0) + 1
            for kind, body in entries:
                self._write(
                    kind, {**body, "journaled_ms": int(session.updated_at.timestamp() * 1000)}, now
                )
            self.sessions[session.facts.session] = session
        self.journaled.clear()
        self._write("store.outage_replayed", {"records": count}, now)
        return count

    async def settle(self, facts: SessionFacts, state: str) -> None:
        self._check()
        record = self.sessions.get(facts.session)
        if record is None or record.state in FINISHED_STATES:
            return
        self._write("session.settled", {"session": facts.session, "state": state}, self.clock())
        self.sessions[facts.session] = replace(record, state=SessionState.CLOSED)

    async def issue_challenge(self, ttl: timedelta, now: datetime) -> ChallengeRecord:
        self._check()
        record = ChallengeRecord(secrets.token_bytes(32), self.gateway_id, now + ttl)
        self._challenges[record.nonce] = record
        return record

    async def take_challenge(self, nonce: bytes, now: datetime) -> ChallengeTaken:
        self._check()
        return ChallengeTaken(self._challenges.pop(nonce, None), self._floor)

    async def time_floor(self) -> datetime | None:
        return self._floor

    async def raise_time_floor(
        self, claimed: datetime, now: datetime, skew: timedelta
    ) -> datetime | None:
        self._check()
        floor_ms = _ms(self._floor) if self._floor is not None else 0
        new_ms = raised_floor_ms(floor_ms, _ms(now), _ms(claimed), _ms_of(skew))
        if new_ms > floor_ms:
            body: dict[str, AuditValue] = {
                "floor_ms": new_ms,
                "claimed_ms": _ms(claimed),
                "local_ms": _ms(now),
            }
            self._write("clock.floor_raised", body, _dt(new_ms))
        return self._floor

    async def reset_time_floor(self, now: datetime) -> FloorReset:
        self._check()
        old_ms = _ms(self._floor) if self._floor is not None else 0
        if old_ms <= _ms(now):
            return FloorReset(old_ms, old_ms, changed=False)
        self._write("clock.floor_reset", {"old_floor_ms": old_ms, "new_floor_ms": _ms(now)}, now)
        self._floor = now
        return FloorReset(old_ms, _ms(now), changed=True)

    async def revocations(self, anchors: TrustAnchors) -> HeldRevocations:
        return self._revocations

    async def add_revocations(self, rl: RevocationList, token: str) -> HeldRevocations:
        self._check()
        self.revocation_tokens.append(token)
        self._revocations = self._revocations.adding(rl)
        return self._revocations

    async def unfinished_sessions(self) -> list[SessionRecord]:
        return [r for r in self.sessions.values() if r.state not in FINISHED_STATES]

    async def record(self, kind: str, body: Mapping[str, AuditValue]) -> None:
        self._check()
        self._write(kind, body, self.clock())

    async def events(self, since: int, limit: int) -> list[dict[str, Any]]:
        return [
            {
                "index": e.index,
                "time_ms": int(e.time.timestamp() * 1000),
                "kind": e.kind,
                "body": e.body,
            }
            for e in self.entries[since : since + limit]
        ]

    async def receipt(self, session: str) -> dict[str, Any] | None:
        return None

    def bind_visit(self, session: str, secret: bytes) -> None:
        self.visits[session] = secret
