"""What the sync task does with the owner's mail and the relay's time (docs/cloud.md).

The relay only relays: every revocation list and approval is checked here against the
owner's key before it counts (by the access service, against this gateway's id), so a relay
cannot forge; a list for another gateway is refused, and a replayed or older list takes
nothing away (the store keeps the union of the lists). The relay's signed time goes to the
access service, which raises the floor by it, never past the local clock plus the ticket
skew, and writes the raise to the audit log as ``clock.floor_raised`` at the new floor, so
the move is on the record and the store's floor (the newest time in the log) takes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class AccessDecisions(Protocol):
    """The part of the access service the owner's mail feeds (``gateway.access.service``)."""

    async def set_revocations(self, token: str) -> int: ...

    async def approve(self, token: str) -> object: ...

    async def raise_time_floor(self, moment: datetime) -> datetime | None: ...


class AccessMailbox:
    """The gateway's ``MailboxHandler``: everything goes through the access service, which
    verifies mail with the owner's key and keeps its revocations and pending sessions in step
    with the store, and which owns the time floor (raised on the record, read per request)."""

    def __init__(self, access: AccessDecisions) -> None:
        self._access = access

    async def apply_revocations(self, token: str) -> None:
        await self._access.set_revocations(token)

    async def apply_approval(self, token: str) -> None:
        await self._access.approve(token)

    async def raise_time_floor(self, time_ms: int) -> int | None:
        floor = await self._access.raise_time_floor(datetime.fromtimestamp(time_ms / 1000, UTC))
        return None if floor is None else int(floor.timestamp() * 1000)
