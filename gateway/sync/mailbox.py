"""What the sync task does with the owner's mail and the relay's time (DESIGN §8).

The relay only relays: every revocation list and approval is checked here against the
owner's key before it counts, so a relay cannot forge; a list for another gateway is refused,
and a replayed or older list takes nothing away (the store keeps the union of the lists). A
raise of the time floor is written to the audit log as ``clock.floor_raised`` with that time,
so the move is on the record and the store's floor (the newest time in the log) takes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from gateway.trust.approval import Approval, decode_approval
from gateway.trust.keys import TrustAnchors
from gateway.trust.revocation import verify_revocations
from store.db import Store
from store.state import RevocationEntry, RevocationOutcome

ApprovalSink = Callable[[Approval], Awaitable[None]]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class StoreMailbox:
    """The gateway's ``MailboxHandler``: verify with the owner's key, then keep or hand on."""

    def __init__(
        self,
        store: Store,
        anchors: TrustAnchors,
        gateway_id: str,
        on_approval: ApprovalSink | None = None,
    ) -> None:
        self._store = store
        self._anchors = anchors
        self._gateway_id = gateway_id
        self._on_approval = on_approval
        self.last_revocation_outcome: RevocationOutcome | None = None

    async def apply_revocations(self, token: str) -> None:
        rl = verify_revocations(token, self._anchors, gateway_id=self._gateway_id)
        entries = [RevocationEntry(e.kind.value, e.value, _ms(e.until)) for e in rl.entries]
        self.last_revocation_outcome, _ = await self._store.add_revocations(rl.seq, token, entries)

    async def apply_approval(self, token: str) -> None:
        approval = decode_approval(token, self._anchors)
        if self._on_approval is not None:
            await self._on_approval(approval)

    async def raise_time_floor(self, time_ms: int) -> None:
        if time_ms > await self._store.time_floor():
            await self._store.append("clock.floor_raised", {"floor_ms": time_ms}, time_ms)


class AccessDecisions(Protocol):
    """The part of the access service the owner's mail feeds (``gateway.access.service``)."""

    async def set_revocations(self, token: str) -> int: ...

    async def approve(self, token: str) -> object: ...


class AccessMailbox:
    """The running gateway's ``MailboxHandler``: mail goes through the access service, which
    verifies it with the owner's key and keeps its in-memory revocations and pending sessions
    in step with the store; the time floor is raised on the record."""

    def __init__(self, store: Store, access: AccessDecisions) -> None:
        self._store = store
        self._access = access

    async def apply_revocations(self, token: str) -> None:
        await self._access.set_revocations(token)

    async def apply_approval(self, token: str) -> None:
        await self._access.approve(token)

    async def raise_time_floor(self, time_ms: int) -> None:
        if time_ms > await self._store.time_floor():
            await self._store.append("clock.floor_raised", {"floor_ms": time_ms}, time_ms)
