"""The session runner: the async shell that performs one session's effects.

The invariants it keeps are those of docs/architecture.md ("the path of one request").

A :class:`SessionRunner` drives one :class:`~gateway.access.session.AccessSession`: each effect
is performed in order and awaited, which is what makes the invariants hold:

1. write-ahead audit: :class:`~gateway.access.session.AppendAudit` effects are committed (one
   transaction per contiguous batch; the session's first one also counts the ticket's use
   atomically) before the next effect, so the unlock follows its ``granted`` entry onto
   disk, never the reverse;
2. no blind unlock retry: an unlock whose outcome is unknown (driver error, timeout) is
   followed by a state read, never by a second unlock;
3. always relock: timers, the door sensor and the courier's ``done`` all feed the machine,
   relocks are verified by a state read and retried with backoff while in ``alarm``;
4. fail closed: what a failed audit write means is the machine's decision
   (:meth:`~gateway.access.session.AccessSession.record_failed`); the runner only performs it;
5. the camera never blocks the door: with an :class:`~gateway.access.ports.EntryWitness` the
   runner starts the clip before the unlock, reports the end of the unlock, the door opening
   and the session's end, and stores its motion facts with the grant and the relock.

Every session is serialised by its own mutex: a timer firing while the courier says done is
handled after, not during, the other event. What every session shares (the settings, the
ledger, the camera, the observer, the store's health) comes in a :class:`SessionContext`;
the runner holds no reference to the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ble.driver import LockDriver, LockState, LockStatus
from ble.errors import (
    LockBusy,
    LockConnectionFailed,
    LockError,
    LockNotAuthorized,
    LockNotFound,
    LockOutcomeUnknown,
)
from gateway.access.admission import AccessRequest, AccessSettings
from gateway.access.errors import AccessRefused
from gateway.access.observer import (
    AccessEvent,
    AccessObserver,
    AlarmRaised,
    DoorRelocked,
    GrantCommitted,
    OwnerNotification,
)
from gateway.access.ports import EntryWitness, Ledger, SessionRecord
from gateway.access.session import (
    AccessSession,
    AppendAudit,
    ApprovalGiven,
    ApprovalTimedOut,
    ArmApprovalTimer,
    ArmOpenTimer,
    AuditValue,
    Effect,
    Event,
    Granted,
    MemoryUses,
    NotificationKind,
    NotifyOwner,
    RelockCause,
    Relocked,
    RelockFailed,
    RelockRequested,
    RetryRelock,
    SendLock,
    SendUnlock,
    SessionState,
    Unlocked,
    UnlockFailed,
    UnlockOutcomeUnknown,
)
from groundwork.backoff import doubling_delay
from store.errors import StoreError

log = logging.getLogger("threshold.access")


@dataclass(slots=True)
class StoreHealth:
    """Whether the store's last write succeeded: the policy's ``storage_writable`` fact."""

    writable: bool = True
    #: A write failed since the service last made sure nothing an outage left behind
    #: (journaled batches, a session row left open) still stands in the way.
    outage: bool = False

    def failed(self) -> None:
        self.writable = False
        self.outage = True


@dataclass(slots=True)
class SessionContext:
    """What every session of one service shares."""

    settings: AccessSettings
    ledger: Ledger
    observer: AccessObserver
    spawn: Callable[[Awaitable[Any], str], asyncio.Task[Any]]
    #: Called after every transition (the service wakes its waiters).
    changed: Callable[[], None]
    witness: EntryWitness | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    health: StoreHealth = field(default_factory=StoreHealth)
    memory_uses: MemoryUses = field(default_factory=MemoryUses)

    def observe(self, event: AccessEvent) -> None:
        try:
            self.observer.observe(event)
        except Exception:
            # An observer is a bystander: its failure must never touch the door.
            log.exception("access observer failed on %s", type(event).__name__)


@dataclass(frozen=True, slots=True)
class SessionView:
    """What the API shows of a session (no token, no keys)."""

    id: str
    door: str
    state: str
    purpose: str
    subject: str
    ticket_id: str
    reason: str | None
    created_at: datetime
    updated_at: datetime
    #: Whether the door sensor reported the door open (not in the API's body).
    door_opened: bool = False
    #: The ticket's issuer (not in the LAN API's body; the owner app shows it).
    issuer: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.id,
            "door": self.door,
            "state": self.state,
            "purpose": self.purpose,
            "subject": self.subject,
            "ticket_id": self.ticket_id,
            "reason": self.reason,
            "created_at": _rfc3339(self.created_at),
            "updated_at": _rfc3339(self.updated_at),
        }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _code(exc: BaseException) -> str:
    return getattr(exc, "code", None) or type(exc).__name__


@dataclass(slots=True)
class DoorSlot:
    """One door: its driver and the session that holds it, if any."""

    name: str
    driver: LockDriver
    session: SessionRunner | None = None
    unsubscribe: Callable[[], None] | None = None


class SessionRunner:
    """Performs one session's effects, in order, one event at a time.

    ``arrived``: the ``time.perf_counter()`` at which the request reached the gateway, for
    the observer's :class:`~gateway.access.observer.GrantCommitted`.
    """

    def __init__(
        self,
        context: SessionContext,
        machine: AccessSession,
        slot: DoorSlot | None,
        holder_key: bytes,
        created_at: datetime,
        *,
        arrived: float | None = None,
    ) -> None:
        self.context = context
        self.machine = machine
        self.slot = slot
        self.holder_key = holder_key
        self.created_at = created_at
        self.updated_at = created_at
        self.arrived = arrived
        #: The request that started the session, kept (in memory only: a restart ends a
        #: waiting session) while it waits for the owner, so the approval can check the
        #: ticket again (issue 11, finding 6); dropped once the wait is over.
        self.waiting_request: AccessRequest | None = None
        self._mutex = asyncio.Lock()
        self._timers: dict[str, asyncio.Task[Any]] = {}
        self._filming = False  # the witness was told of the grant and not yet of the end

    # -- views ---------------------------------------------------------------------------------

    def view(self) -> SessionView:
        f = self.machine.facts
        return SessionView(
            id=f.session,
            door=f.door,
            state=self.machine.shown_state,
            purpose=f.purpose,
            subject=f.subject,
            ticket_id=f.jti,
            reason=self.machine.shown_reason,
            created_at=self.created_at,
            updated_at=self.updated_at,
            door_opened=self.machine.door_was_opened,
            issuer=f.issuer,
        )

    def view_or_raise(self) -> SessionView:
        """The view after a request; a session that ended without opening is refused."""
        refusal = self.machine.refusal()
        if refusal is not None:
            raise AccessRefused.of(refusal)
        return self.view()

    # -- events --------------------------------------------------------------------------------

    def submit(self, event: Event) -> None:
        """Queue an event from a callback or timer (handled after any event in progress)."""
        self.context.spawn(self.handle(event), f"session {self.machine.facts.session}")

    async def handle(self, event: Event) -> None:
        async with self._mutex:
            pending: list[Event] = [event]
            while pending:
                current = pending.pop(0)
                if self.machine.aborted is not None:
                    return
                current = await self._witness_grant(current)
                opened = self.machine.door_was_opened
                was_open = self.machine.state is SessionState.OPEN
                effects = self.machine.handle(current)
                witness = self.context.witness
                if witness and self._filming:
                    f = self.machine.facts
                    if not was_open and self.machine.state is SessionState.OPEN:
                        witness.door_unlocked(f.session, f.door)
                    if not opened and self.machine.door_was_opened:
                        witness.door_opened(f.session, f.door)
                follow = await self._perform(effects)
                pending.extend(follow)
            self._after_transition()

    async def _witness_grant(self, event: Event) -> Event:
        """At a grant, before the unlock: start filming and take the scene's motion facts."""
        witness = self.context.witness
        state = self.machine.state
        granting = (isinstance(event, Granted) and state is SessionState.REQUESTED) or (
            isinstance(event, ApprovalGiven) and state is SessionState.AWAITING_APPROVAL
        )
        if witness is None or not granting or self._filming:
            return event
        f = self.machine.facts
        try:
            await witness.session_granted(f.session, f.door)
            self._filming = True
        except Exception:
            # The camera is a witness, not a gate: the policy already decided on its facts.
            log.exception("session %s: the camera could not start recording", f.session)
        scene = witness.grant_scene(f.door)
        assert isinstance(event, (Granted, ApprovalGiven))
        return replace(event, scene=scene)

    def _after_transition(self) -> None:
        self.context.changed()
        machine = self.machine
        witness = self.context.witness
        if self._filming and witness is not None and machine.ended:
            self._filming = False
            state = machine.aborted or machine.state.value
            witness.session_ended(machine.facts.session, machine.facts.door, state)
        if machine.state is not SessionState.OPEN:
            self._cancel_timer("open")
        if machine.state is not SessionState.AWAITING_APPROVAL:
            self._cancel_timer("approval")
            self.waiting_request = None
        if machine.ended and self.slot is not None and self.slot.session is self:
            self.slot.session = None

    async def _perform(self, effects: list[Effect]) -> list[Event]:
        follow: list[Event] = []
        batch: list[AppendAudit] = []
        for effect in effects:
            if isinstance(effect, AppendAudit):
                batch.append(effect)
                continue
            if batch:
                if not await self._commit(batch):
                    return []
                batch = []
            follow.extend(await self._do(effect))
        if batch and not await self._commit(batch):
            return []
        return follow

    async def _commit(self, batch: list[AppendAudit]) -> bool:
        """Make a batch of audit entries durable; False: the session was aborted."""
        context = self.context
        machine = self.machine
        now = context.clock()
        self.updated_at = now
        record = SessionRecord(
            facts=machine.facts,
            state=machine.state,
            holder_key=self.holder_key,
            created_at=self.created_at,
            updated_at=now,
            reason=machine.reason,
        )
        entries = [(e.kind, e.record()) for e in batch]
        use = machine.use_to_count
        try:
            written = await context.ledger.append(entries, record, use)
        except StoreError as exc:
            context.health.failed()
            goes_on = machine.record_failed(context.memory_uses)
            if goes_on:
                await self._journal(entries, record, use)
            if goes_on and machine.emergency:
                log.critical(
                    "EMERGENCY session %s: audit entries %s NOT recorded (%s); going on",
                    machine.facts.session,
                    [e.kind for e in batch],
                    exc.code,
                )
            elif goes_on:
                log.error(
                    "session %s: audit write failed (%s); the door moved, relocking anyway",
                    machine.facts.session,
                    exc.code,
                )
            else:
                log.error(
                    "session %s: audit write failed (%s); failing closed",
                    machine.facts.session,
                    exc.code,
                )
        else:
            context.health.writable = True
            context.changed()
            goes_on = machine.recorded(written)
        if goes_on:
            self._report(batch)
        return goes_on

    async def _journal(
        self,
        entries: list[tuple[str, dict[str, AuditValue]]],
        record: SessionRecord,
        use: tuple[str, str, int] | None,
    ) -> None:
        """A batch the store refused but the session goes on with: keep it (and the use it
        counts) in the outage journal before the next effect, so the use survives a restart
        and the log gets the whole visit once the store can write (issue 11, finding 4)."""
        try:
            await self.context.ledger.journal(entries, record, use)
        except StoreError as exc:
            log.critical(
                "session %s: entries %s are in neither the store nor the outage journal (%s)",
                record.facts.session,
                [kind for kind, _ in entries],
                exc.code,
            )

    def _report(self, batch: list[AppendAudit]) -> None:
        for entry in batch:
            if entry.kind == "alarm.raised":
                reason = entry.detail.get("reason")
                self.context.observe(AlarmRaised(entry.session, entry.door, str(reason)))
            elif entry.state is SessionState.CLOSED and entry.kind == "session.closed":
                self.context.observe(DoorRelocked(entry.session, entry.door))

    async def _do(self, effect: Effect) -> list[Event]:
        if isinstance(effect, SendUnlock):
            return [await self._unlock()]
        if isinstance(effect, SendLock):
            return [await self._relock()]
        if isinstance(effect, ArmOpenTimer):
            self._arm("open", effect.seconds, RelockRequested(RelockCause.OPEN_TIMEOUT))
            return []
        if isinstance(effect, ArmApprovalTimer):
            self._arm("approval", effect.seconds, ApprovalTimedOut())
            return []
        if isinstance(effect, NotifyOwner):
            f = self.machine.facts
            self.context.observe(
                OwnerNotification(effect.kind, f.door, f.session, f.purpose, f.subject, effect.text)
            )
            if effect.kind is NotificationKind.RELOCK_FAILED:
                self._schedule_retry()
            return []
        raise AssertionError(f"unhandled effect {effect!r}")

    async def _unlock(self) -> Event:
        slot = self.slot
        if slot is None:
            return UnlockFailed("lock_unavailable")
        timeout = self.context.settings.lock_timeout_s
        f = self.machine.facts
        since = None if self.arrived is None else time.perf_counter() - self.arrived
        self.context.observe(GrantCommitted(f.session, f.door, f.purpose, f.subject, since))
        try:
            status = await asyncio.wait_for(slot.driver.unlock(), timeout)
        except LockOutcomeUnknown as exc:
            return UnlockOutcomeUnknown(exc.status)
        except (LockNotAuthorized, LockBusy, LockNotFound, LockConnectionFailed) as exc:
            # The command never reached the lock: its state is what it was.
            return UnlockFailed(exc.code)
        except (LockError, TimeoutError) as exc:
            # Invariant 2: the outcome is unknown; read, never unlock again.
            log.warning("unlock outcome unknown on %s (%s); reading", slot.name, _code(exc))
            reading: LockStatus | None = None
            with contextlib.suppress(LockError, TimeoutError):
                reading = await asyncio.wait_for(slot.driver.status(), timeout)
            return UnlockOutcomeUnknown(reading)
        if status.lock is not LockState.UNLOCKED:
            return UnlockOutcomeUnknown(status)
        return Unlocked(status)

    async def _relock(self) -> Event:
        slot = self.slot
        if slot is None:
            return RelockFailed("no_such_door")
        timeout = self.context.settings.lock_timeout_s
        try:
            await asyncio.wait_for(slot.driver.lock(), timeout)
        except LockOutcomeUnknown:
            pass  # the verifying read below decides
        except (LockError, TimeoutError) as exc:
            return RelockFailed(_code(exc))
        try:
            status = await asyncio.wait_for(slot.driver.status(), timeout)
        except (LockError, TimeoutError) as exc:
            return RelockFailed(_code(exc))
        witness = self.context.witness
        if witness is None:
            return Relocked(status)
        return Relocked(status, scene=witness.relock_scene(self.machine.facts.door))

    def _schedule_retry(self) -> None:
        settings = self.context.settings
        attempt = self.machine.relock_attempts
        delay = doubling_delay(
            attempt, settings.relock_retry_initial_s, settings.relock_retry_max_s
        )

        async def retry() -> None:
            await asyncio.sleep(delay)
            await self.handle(RetryRelock(attempt))

        self._timers["retry"] = self.context.spawn(
            retry(), f"relock retry {self.machine.facts.session}"
        )

    def _arm(self, name: str, seconds: float, event: Event) -> None:
        self._cancel_timer(name)

        async def fire() -> None:
            await asyncio.sleep(seconds)
            await self.handle(event)

        self._timers[name] = self.context.spawn(
            fire(), f"{name} timer {self.machine.facts.session}"
        )

    def _cancel_timer(self, name: str) -> None:
        task = self._timers.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
