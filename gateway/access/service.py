"""The access-session runner: the async shell around :mod:`gateway.access.session` (DESIGN §3).

One :class:`AccessService` serves every door. For a request it gathers the facts (the
challenge the store consumed, the time floor, the revocation list, the camera), asks
:func:`gateway.trust.verification.check_ticket`,
:func:`gateway.trust.verification.verify_holder_proof` and
:func:`gateway.access.policy.decide`, reserves the door, and then drives the session's state
machine: each effect is performed in order and awaited, which is what makes the invariants
hold:

1. write-ahead audit: :class:`~gateway.access.session.AppendAudit` effects are committed (one
   transaction per contiguous batch; the session's first one also counts the ticket's use
   atomically) before the next effect, so the unlock follows its ``granted`` entry onto
   disk, never the reverse;
2. no blind unlock retry: an unlock whose outcome is unknown (driver error, timeout) is
   followed by a state read, never by a second unlock;
3. always relock: timers, the door sensor and the courier's ``done`` all feed the machine,
   relocks are verified by a state read and retried with backoff while in ``alarm``;
4. one session per door: the door is reserved synchronously, before any await;
5. fail closed: a store error before the unlock ends the request with
   ``storage_unavailable`` and nothing is sent to the lock (emergency tickets go on, loudly);
6. the camera fact comes from a callable; with no camera configured it is False. With an
   :class:`EntryWitness` (the camera, :mod:`gateway.access.filming`) the runner also starts the
   clip before the unlock, reports the door opening and the session's end to it, and stores
   its motion facts with the grant and the relock; the camera never blocks the door.

Every session is serialised by its own mutex: a timer firing while the courier says done is
handled after, not during, the other event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NoReturn, Protocol

from ble.driver import LockDriver, LockState, LockStatus
from ble.errors import (
    LockBusy,
    LockConnectionFailed,
    LockError,
    LockNotAuthorized,
    LockNotFound,
    LockOutcomeUnknown,
)
from gateway.access.policy import (
    Allow,
    AwaitApproval,
    GatewayFacts,
    PolicyRules,
    Refuse,
    TicketTerms,
    decide,
)
from gateway.access.policy import Purpose as PolicyPurpose
from gateway.access.session import (
    AccessSession,
    AppendAudit,
    ApprovalGiven,
    ApprovalRefused,
    ApprovalRequired,
    ApprovalTimedOut,
    ArmApprovalTimer,
    ArmOpenTimer,
    AuditValue,
    Denied,
    DoorSensed,
    Effect,
    Event,
    Granted,
    NotifyOwner,
    Reconciled,
    RelockCause,
    Relocked,
    RelockFailed,
    RelockRequested,
    RetryRelock,
    SendLock,
    SendUnlock,
    SessionFacts,
    SessionState,
    Unlocked,
    UnlockFailed,
    UnlockOutcomeUnknown,
)
from gateway.errors import GatewayError
from gateway.trust.verification import (
    ChallengeRecord,
    HeldRevocations,
    Reason,
    RevocationList,
    Ticket,
    TrustAnchors,
    check_ticket,
    decode_revocations,
    verify_approval,
    verify_holder_proof,
)
from store.errors import StoreError

log = logging.getLogger("threshold.access")

SESSION_ID_BYTES = 12
KEEP_FINISHED_SESSIONS = 1000


class AccessRefused(GatewayError):
    """A request the gateway answers with no: ``code`` is the stable problem code."""

    code = "refused"

    def __init__(self, code: str, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]
        self.status = status


# ---------------------------------------------------------------------------------------------
# What the runner needs from the store (gateway.access.ledger adapts store/ to it).


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as the store keeps it, enough to reconcile it after a restart."""

    facts: SessionFacts
    state: SessionState
    holder_key: bytes
    created_at: datetime
    updated_at: datetime
    reason: str | None = None


class Ledger(Protocol):
    """The durable state the runner reads and writes; every write is durable on return."""

    async def append(
        self,
        entries: Sequence[tuple[str, Mapping[str, AuditValue]]],
        session: SessionRecord,
        use: tuple[str, str, int] | None = None,
    ) -> bool:
        """Append audit entries and save the session's state in one durable transaction.

        With ``use`` = (issuer key id, ticket id, max uses), first count one use atomically
        in the same transaction; if the uses are exhausted nothing is written and the answer
        is False.
        """

    async def issue_challenge(self, ttl: timedelta, now: datetime) -> ChallengeRecord: ...

    async def take_challenge(self, nonce: bytes, now: datetime) -> ChallengeRecord | None:
        """Consume a challenge atomically: it is returned once, then never again."""

    async def time_floor(self) -> datetime | None: ...

    async def revocations(self, anchors: TrustAnchors) -> HeldRevocations:
        """Every revocation held (the union of the lists accepted)."""

    async def add_revocations(self, rl: RevocationList, token: str) -> HeldRevocations:
        """Add a verified list to those held; what is held afterwards."""

    async def unfinished_sessions(self) -> list[SessionRecord]: ...

    async def record(self, kind: str, body: Mapping[str, AuditValue]) -> None:
        """One audit entry outside any session (owner acts, start-up, alarms)."""

    async def events(self, since: int, limit: int) -> list[dict[str, Any]]:
        """Audit entries from index ``since`` on, at most ``limit``."""

    async def receipt(self, session: str) -> dict[str, Any] | None:
        """A signed checkpoint and inclusion proof for the session's latest entry."""


class EntryWitness(Protocol):
    """The camera as the runner sees it; every method returns promptly (no I/O waits)."""

    def live(self) -> bool: ...

    def grant_scene(self) -> Mapping[str, AuditValue]: ...

    def relock_scene(self) -> Mapping[str, AuditValue]: ...

    async def session_granted(self, session: str, door: str) -> None:
        """Start the clip (from the pre-roll) and the grant snapshot; before the unlock."""

    def door_opened(self, session: str, door: str) -> None: ...

    def session_ended(self, session: str, door: str, state: str) -> None:
        """Finish the clip (post-roll) and take the closing snapshot, off the access path."""


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessRequest:
    ticket: str
    door: str
    nonce: bytes
    proof: bytes
    package_code: str | None = None
    revocations: str | None = None


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


@dataclass(slots=True)
class DoorSlot:
    """One door: its driver and the session that holds it, if any."""

    name: str
    driver: LockDriver
    session: SessionRunner | None = None
    unsubscribe: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class AccessSettings:
    gateway_id: str
    anchors: TrustAnchors
    zone: tzinfo
    rules: PolicyRules
    default_open_s: float = 60.0
    max_open_s: float = 900.0
    challenge_ttl: timedelta = timedelta(seconds=10)
    skew: timedelta = timedelta(seconds=120)
    lock_timeout_s: float = 10.0
    relock_retry_initial_s: float = 1.0
    relock_retry_max_s: float = 30.0


@dataclass(slots=True)
class OpenTiming:
    """For the benchmark: request arrival to unlock handed to the driver, per grant."""

    samples: list[float] = field(default_factory=list)


class AccessService:
    """Every door's sessions; the API's one entry point for courier and owner actions."""

    def __init__(
        self,
        settings: AccessSettings,
        ledger: Ledger,
        drivers: Mapping[str, LockDriver],
        *,
        camera_live: Callable[[], bool] | None = None,
        witness: EntryWitness | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.doors = {name: DoorSlot(name, driver) for name, driver in drivers.items()}
        self.witness = witness
        if camera_live is None:
            camera_live = witness.live if witness is not None else (lambda: False)
        self.camera_live = camera_live
        self.clock = clock
        self.sessions: OrderedDict[str, SessionRunner] = OrderedDict()
        self.timing = OpenTiming()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._revocations = HeldRevocations()
        self._storage_ok = True
        self._emergency_uses: set[tuple[str, str]] = set()
        self._memory_challenges: dict[bytes, ChallengeRecord] = {}
        #: Requests refused before any signature verified, or without the holder's proof
        #: (not audited: see request_access).
        self.unauthenticated_refusals = 0
        self._closing = False
        self.reconciled = 0
        self._changed = asyncio.Event()
        self._floor: datetime | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        # The time floor is read once, then advanced with every entry this service writes:
        # the store keeps the same rule on disk, and a request costs no extra read.
        self._floor = await self.ledger.time_floor()
        self._revocations = await self.ledger.revocations(self.settings.anchors)
        for slot in self.doors.values():
            slot.unsubscribe = slot.driver.subscribe(self._status_callback(slot))
        await self.reconcile()

    def _status_callback(self, slot: DoorSlot) -> Callable[[LockStatus], None]:
        def on_status(status: LockStatus) -> None:
            runner = slot.session
            if runner is not None and runner.machine.state is SessionState.OPEN:
                runner.submit(DoorSensed(status.door))

        return on_status

    async def reconcile(self) -> None:
        """Bring every session the store holds unfinished to an end (DESIGN §3, invariant 3)."""
        for record in await self.ledger.unfinished_sessions():
            slot = self.doors.get(record.facts.door)
            machine = AccessSession.restore(record.facts, record.state)
            runner = SessionRunner(self, machine, slot, record.holder_key, record.created_at)
            self._remember(runner)
            status: LockStatus | None = None
            if slot is not None and machine.state not in (
                SessionState.REQUESTED,
                SessionState.AWAITING_APPROVAL,
            ):
                slot.session = runner
                try:
                    status = await asyncio.wait_for(
                        slot.driver.status(), self.settings.lock_timeout_s
                    )
                except (LockError, TimeoutError) as exc:
                    log.warning("reconcile %s: lock unreadable (%s)", record.facts.door, exc)
            log.info(
                "reconciling session %s on %s (was %s, lock %s)",
                record.facts.session,
                record.facts.door,
                record.state.value,
                status.lock.value if status else "unreadable",
            )
            await runner.handle(Reconciled(status))
            self.reconciled += 1

    async def shutdown(self, budget_s: float = 3.0) -> None:
        """Relock every door a session holds, within ``budget_s``, then stop all tasks."""
        self._closing = True
        # A session still unlocking is included: handle() waits for the unlock in progress
        # (the session's mutex), and the door it opened is then relocked like the others.
        in_flight = (SessionState.GRANTED, SessionState.UNLOCKING, SessionState.OPEN)
        relocks = [
            runner.handle(RelockRequested(RelockCause.SHUTDOWN))
            for runner in list(self.sessions.values())
            if runner.machine.state in in_flight
        ]
        if relocks:
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(r) for r in relocks], timeout=budget_s
            )
            for task in pending:
                task.cancel()
            for task in done:
                if task.exception() is not None:
                    log.error("relock at shutdown failed: %s", task.exception())
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        for slot in self.doors.values():
            if slot.unsubscribe is not None:
                slot.unsubscribe()

    def advance_floor(self, moment: datetime) -> None:
        if self._floor is None or moment > self._floor:
            self._floor = moment

    def notify_changed(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until ``predicate()`` holds, re-checking after every session transition."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed: %r", task.get_name(), task.exception())

    def _remember(self, runner: SessionRunner) -> None:
        self.sessions[runner.machine.facts.session] = runner
        while len(self.sessions) > KEEP_FINISHED_SESSIONS:
            oldest_id, oldest = next(iter(self.sessions.items()))
            if not oldest.machine.finished:
                break
            del self.sessions[oldest_id]

    # -- courier actions -----------------------------------------------------------------------

    async def issue_challenge(self) -> ChallengeRecord:
        now = self.clock()
        try:
            record = await self.ledger.issue_challenge(self.settings.challenge_ttl, now)
            self._storage_ok = True
        except StoreError as exc:
            # Only an emergency ticket can use this challenge (every other request fails
            # closed on the same broken store), so it is kept in memory, loudly.
            self._storage_ok = False
            log.error("store cannot record challenges (%s); issuing from memory", exc.code)
            record = ChallengeRecord(
                secrets.token_bytes(32), self.settings.gateway_id, now + self.settings.challenge_ttl
            )
            self._memory_challenges[record.nonce] = record
            while len(self._memory_challenges) > 1000:
                self._memory_challenges.pop(next(iter(self._memory_challenges)))
        return record

    async def request_access(self, request: AccessRequest, arrived: float) -> SessionView:
        """Decide and, on a grant, unlock. Returns once the door is open or awaiting the owner.

        ``arrived`` is the ``time.perf_counter()`` at which the request reached the gateway.
        Raises :class:`AccessRefused` for every no.
        """
        if self._closing:
            raise AccessRefused("lock_unavailable", "the gateway is shutting down", status=503)
        slot = self.doors.get(request.door)
        if slot is None:
            raise AccessRefused("wrong_door", f"this gateway has no door {request.door!r}")
        now = self.clock()
        if request.revocations is not None:
            await self._accept_revocations(request.revocations)
        store_failed = False
        try:
            challenge = await self.ledger.take_challenge(request.nonce, now)
        except StoreError as exc:
            store_failed = True
            self._storage_ok = False
            log.error("store failed while checking a request (%s)", exc.code)
            challenge = self._memory_challenges.pop(request.nonce, None)
        verdict = check_ticket(
            request.ticket,
            anchors=self.settings.anchors,
            gateway_id=self.settings.gateway_id,
            door=request.door,
            now=now,
            zone=self.settings.zone,
            revocations=self._revocations,
            uses_so_far=0,
            time_floor=self._floor,
            skew=self.settings.skew,
        )
        ticket = verdict.claims
        if ticket is None:
            # Nothing verified: no signature, no holder. Not evidence of anything, and not
            # written to the audit log, so garbage cannot fill the disk.
            self.unauthenticated_refusals += 1
            raise AccessRefused(verdict.reason.value, verdict.detail or verdict.reason.value)
        emergency = ticket.purpose.value == PolicyPurpose.EMERGENCY.value
        facts = SessionFacts(
            session=_new_session_id(),
            door=slot.name,
            jti=ticket.jti,
            subject=ticket.sub,
            purpose=ticket.purpose.value,
            open_s=min(float(ticket.open_s), self.settings.max_open_s),
        )
        proof_reason = verify_holder_proof(
            ticket,
            gateway_id=self.settings.gateway_id,
            challenge=challenge,
            proof=request.proof,
            now=now,
            action="open",
        )
        if proof_reason is not Reason.OK:
            # Not shown to be the holder (a copied token is enough to get here): counted, not
            # written to the audit log under the holder's name.
            self.unauthenticated_refusals += 1
            code = verdict.reason if not verdict.allowed else proof_reason
            raise AccessRefused(code.value, verdict.detail or "proof of possession failed")
        if not verdict.allowed:
            await self._deny(facts, ticket, verdict.reason.value, verdict.detail, now)
        if store_failed and not emergency:
            raise AccessRefused(
                "storage_unavailable", "the gateway's store failed; failing closed", status=503
            )
        terms = _terms(ticket)
        decision = decide(
            terms,
            package_code=request.package_code,
            facts=GatewayFacts(camera_live=self.camera_live(), storage_writable=self._storage_ok),
            rules=self.settings.rules,
            clock_alarm=verdict.alarm,
        )
        if isinstance(decision, Refuse):
            status = 503 if decision.code == "storage_unavailable" else 403
            await self._deny(facts, ticket, decision.code, decision.detail, now, status=status)

        # Invariant 4: check and reserve the door with no await in between.
        if slot.session is not None and not slot.session.machine.finished:
            await self._deny(
                facts, ticket, "door_busy", f"door {slot.name} is in use", now, status=409
            )
        runner = SessionRunner(self, AccessSession(facts), slot, ticket.cnf, now)
        runner.emergency = emergency
        runner.arrived = arrived
        # The use is counted in the same durable transaction as the session's first entries
        # (one commit, not two); an emergency ticket is never usable twice whatever it says.
        runner.use_claim = (verdict.issuer_kid, ticket.jti, 1 if emergency else ticket.uses)
        slot.session = runner
        self._remember(runner)

        if isinstance(decision, AwaitApproval):
            await runner.handle(ApprovalRequired(decision.timeout_s))
        else:
            assert isinstance(decision, Allow)
            await runner.handle(
                Granted(alarm=decision.alarm is not None, alarm_reason=decision.alarm or "")
            )
        if runner.aborted == "uses_exhausted":
            self.sessions.pop(facts.session, None)
            await self._deny(facts, ticket, "uses_exhausted", "ticket already used up", now)
        return runner.view_or_raise()

    async def _deny(
        self,
        facts: SessionFacts,
        ticket: Ticket,
        code: str,
        detail: str,
        now: datetime,
        *,
        status: int = 403,
    ) -> NoReturn:
        """Record a refusal of a genuine ticket (requested -> denied) and answer no."""
        runner = SessionRunner(self, AccessSession(facts), None, ticket.cnf, now)
        await runner.handle(Denied(code, detail))
        raise AccessRefused(code, detail or code, status=status)

    async def _accept_revocations(self, token: str) -> None:
        """Add an owner-signed list for this gateway to the revocations held (the store keeps
        the union: no list can take an entry away). Anything that does not verify, or is for
        another gateway, is refused (400)."""
        try:
            incoming = decode_revocations(
                token, self.settings.anchors, gateway_id=self.settings.gateway_id
            )
        except GatewayError as exc:
            raise AccessRefused(
                exc.code, f"revocation list refused: {exc.message}", status=400
            ) from None
        if self._revocations.covers(incoming):
            return
        try:
            self._revocations = await self.ledger.add_revocations(incoming, token)
        except StoreError as exc:
            raise AccessRefused(
                "storage_unavailable", f"cannot store revocations ({exc.code})", status=503
            ) from None

    def camera_stalled(self) -> int:
        """The camera stopped delivering frames: relock every open door early (DESIGN §3,
        invariant 6; Amazon Key's 2017 frozen-camera attack). The camera component calls
        this; returns how many sessions were told to relock."""
        count = 0
        for slot in self.doors.values():
            runner = slot.session
            if runner is None:
                continue
            if runner.machine.state is SessionState.OPEN:
                runner.submit(RelockRequested(RelockCause.CAMERA_STALLED))
                count += 1
            elif runner.machine.state in (SessionState.GRANTED, SessionState.UNLOCKING):
                # Mid-unlock: relock as soon as the door is open (see _after_transition).
                runner.relock_when_open = True
                count += 1
        return count

    def view(self, session_id: str) -> SessionView | None:
        runner = self.sessions.get(session_id)
        return runner.view() if runner is not None else None

    async def done(self, session_id: str, nonce: bytes, proof: bytes) -> SessionView:
        """The courier says they are out: check a fresh proof by the same holder, relock."""
        runner = self.sessions.get(session_id)
        if runner is None:
            raise AccessRefused("not_found", f"no session {session_id}", status=404)
        try:
            challenge = await self.ledger.take_challenge(nonce, self.clock())
        except StoreError as exc:
            raise AccessRefused(
                "storage_unavailable", f"the gateway's store failed ({exc.code})", status=503
            ) from None
        holder = _HolderOnly(runner.machine.facts.jti, runner.holder_key)
        reason = verify_holder_proof(
            holder,  # type: ignore[arg-type]
            gateway_id=self.settings.gateway_id,
            challenge=challenge,
            proof=proof,
            now=self.clock(),
            action="done",
        )
        if reason is not Reason.OK:
            raise AccessRefused(reason.value, "proof of possession for done failed")
        if runner.machine.state is SessionState.OPEN:
            await runner.handle(RelockRequested(RelockCause.DONE))
        return runner.view()

    async def receipt(self, session_id: str) -> dict[str, Any] | None:
        try:
            return await self.ledger.receipt(session_id)
        except StoreError as exc:
            log.error("no receipt for session %s (%s)", session_id, exc.code)
            return None

    # -- owner actions -------------------------------------------------------------------------

    async def approve(self, token: str) -> SessionView:
        from gateway.trust.approval import decode_approval

        try:
            approval = decode_approval(token, self.settings.anchors)
        except GatewayError as exc:
            raise AccessRefused(exc.code, f"approval refused: {exc.message}", status=400) from None
        runner = self.sessions.get(approval.session)
        if runner is None:
            raise AccessRefused("not_found", f"no session {approval.session}", status=404)
        verdict = verify_approval(
            token,
            anchors=self.settings.anchors,
            gateway_id=self.settings.gateway_id,
            session_id=approval.session,
            ticket_id=runner.machine.facts.jti,
            now=self.clock(),
            skew=self.settings.skew,
        )
        if runner.machine.state is not SessionState.AWAITING_APPROVAL:
            raise AccessRefused(
                "not_awaiting_approval",
                f"session is {runner.machine.state.value}, not awaiting approval",
                status=409,
            )
        if verdict.allowed:
            await runner.handle(ApprovalGiven(by="owner"))
        elif verdict.reason is Reason.APPROVAL_DECLINED:
            await runner.handle(ApprovalRefused(by="owner"))
        else:
            raise AccessRefused(verdict.reason.value, verdict.detail, status=400)
        return runner.view()

    async def set_revocations(self, token: str) -> int:
        await self._accept_revocations(token)
        return self._revocations.seq or 0

    async def owner_lock(self, door: str, action: str) -> LockStatus:
        """A manual lock or unlock by the owner, recorded as the owner's act."""
        slot = self.doors.get(door)
        if slot is None:
            raise AccessRefused("not_found", f"no door {door!r}", status=404)
        if action not in ("lock", "unlock"):
            raise AccessRefused("bad_request", "action must be lock or unlock", status=400)
        runner = slot.session
        if action == "lock" and runner is not None and runner.machine.state is SessionState.OPEN:
            await runner.handle(RelockRequested(RelockCause.OWNER))
            return await self._read(slot)
        if action == "unlock" and runner is not None and not runner.machine.finished:
            raise AccessRefused("door_busy", f"door {door} is in use by a session", status=409)
        try:
            await self.ledger.record(f"owner.{action}", {"door": door, "by": "owner"})
        except StoreError as exc:
            raise AccessRefused(
                "storage_unavailable", f"cannot record the owner's act ({exc.code})", status=503
            ) from None
        try:
            if action == "unlock":
                status = await asyncio.wait_for(slot.driver.unlock(), self.settings.lock_timeout_s)
            else:
                await asyncio.wait_for(slot.driver.lock(), self.settings.lock_timeout_s)
                status = await self._read(slot)
        except (LockError, TimeoutError) as exc:
            raise AccessRefused(
                "lock_unavailable", f"the lock did not answer ({_code(exc)})", status=503
            ) from None
        with contextlib.suppress(StoreError):
            await self.ledger.record(
                f"owner.{action}.done", {"door": door, "lock": status.lock.value}
            )
        return status

    async def _read(self, slot: DoorSlot) -> LockStatus:
        return await asyncio.wait_for(slot.driver.status(), self.settings.lock_timeout_s)

    def door_states(self) -> dict[str, str | None]:
        return {
            name: (slot.session.machine.facts.session if slot.session else None)
            for name, slot in self.doors.items()
        }


@dataclass(frozen=True, slots=True)
class _HolderOnly:
    """The two ticket fields verify_holder_proof reads, for a proof on a running session."""

    jti: str
    cnf: bytes


def _code(exc: BaseException) -> str:
    return getattr(exc, "code", None) or type(exc).__name__


def _new_session_id() -> str:
    return "s-" + secrets.token_hex(SESSION_ID_BYTES)


def _terms(ticket: Ticket) -> TicketTerms:
    return TicketTerms(
        purpose=PolicyPurpose(ticket.purpose.value),
        package_hashes=tuple(ticket.delivery.packages) if ticket.delivery else (),
        owner_approval=ticket.needs_owner_approval,
        camera_required=ticket.camera.value == "required",
    )


class SessionRunner:
    """Performs one session's effects, in order, one event at a time."""

    def __init__(
        self,
        service: AccessService,
        machine: AccessSession,
        slot: DoorSlot | None,
        holder_key: bytes,
        created_at: datetime,
    ) -> None:
        self.service = service
        self.machine = machine
        self.slot = slot
        self.holder_key = holder_key
        self.created_at = created_at
        self.updated_at = created_at
        self.emergency = False
        self.arrived: float | None = None
        self.aborted: str | None = None
        self.use_claim: tuple[str, str, int] | None = None
        self._mutex = asyncio.Lock()
        self._timers: dict[str, asyncio.Task[Any]] = {}
        self._filming = False  # the witness was told of the grant and not yet of the end
        self.relock_when_open = False  # the camera stalled while this session was unlocking

    # -- views ---------------------------------------------------------------------------------

    def view(self) -> SessionView:
        f = self.machine.facts
        state = self.machine.state.value
        reason = self.machine.reason
        if self.aborted is not None:
            state, reason = SessionState.DENIED.value, self.aborted
        return SessionView(
            id=f.session,
            door=f.door,
            state=state,
            purpose=f.purpose,
            subject=f.subject,
            ticket_id=f.jti,
            reason=reason,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def view_or_raise(self) -> SessionView:
        """The view after a request; a session that ended without opening is an error."""
        if self.aborted is not None:
            raise AccessRefused(
                self.aborted,
                "the audit log could not be written; nothing was unlocked",
                status=503,
            )
        state = self.machine.state
        if state is SessionState.DENIED:
            raise AccessRefused(self.machine.reason or "denied", "denied")
        if state in (SessionState.FAILED, SessionState.RELOCKING, SessionState.ALARM) and (
            SessionState.OPEN not in self.machine.history
        ):
            raise AccessRefused(
                "lock_unavailable",
                f"the lock did not unlock ({self.machine.reason or state.value})",
                status=503,
            )
        return self.view()

    # -- events --------------------------------------------------------------------------------

    def submit(self, event: Event) -> None:
        """Queue an event from a callback or timer (handled after any event in progress)."""
        self.service.spawn(self.handle(event), f"session {self.machine.facts.session}")

    async def handle(self, event: Event) -> None:
        async with self._mutex:
            pending: list[Event] = [event]
            while pending:
                current = pending.pop(0)
                if self.aborted is not None:
                    return
                current = await self._witness_grant(current)
                opened = self.machine.door_was_opened
                effects = self.machine.handle(current)
                witness = self.service.witness
                if witness and self._filming and not opened and self.machine.door_was_opened:
                    witness.door_opened(self.machine.facts.session, self.machine.facts.door)
                follow = await self._perform(effects)
                pending.extend(follow)
            self._after_transition()

    async def _witness_grant(self, event: Event) -> Event:
        """At a grant, before the unlock: start filming and take the scene's motion facts."""
        witness = self.service.witness
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
        scene = witness.grant_scene()
        assert isinstance(event, (Granted, ApprovalGiven))
        return replace(event, scene=scene)

    def _after_transition(self) -> None:
        self.service.notify_changed()
        machine = self.machine
        witness = self.service.witness
        if self._filming and witness is not None and (machine.finished or self.aborted):
            self._filming = False
            state = self.aborted or machine.state.value
            witness.session_ended(machine.facts.session, machine.facts.door, state)
        if machine.state is SessionState.OPEN and self.relock_when_open:
            self.relock_when_open = False
            self.submit(RelockRequested(RelockCause.CAMERA_STALLED))
        if machine.state is not SessionState.OPEN:
            self._cancel_timer("open")
        if machine.state is not SessionState.AWAITING_APPROVAL:
            self._cancel_timer("approval")
        ended = machine.finished or self.aborted is not None
        if ended and self.slot is not None and self.slot.session is self:
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
        """Make a batch of audit entries durable; False aborts the session (fail closed)."""
        service = self.service
        now = service.clock()
        self.updated_at = now
        record = SessionRecord(
            facts=self.machine.facts,
            state=self.machine.state,
            holder_key=self.holder_key,
            created_at=self.created_at,
            updated_at=now,
            reason=self.machine.reason,
        )
        claim = self.use_claim
        try:
            written = await service.ledger.append(
                [(e.kind, e.record()) for e in batch], record, claim
            )
            self.use_claim = None
            service._storage_ok = True
            service.advance_floor(now)
            service.notify_changed()
            if not written:
                self.aborted = "uses_exhausted"
                return False
            return True
        except StoreError as exc:
            service._storage_ok = False
            if self.emergency:
                log.critical(
                    "EMERGENCY session %s: audit entries %s NOT recorded (%s); going on",
                    self.machine.facts.session,
                    [e.kind for e in batch],
                    exc.code,
                )
                if claim is not None:
                    self.use_claim = None
                    if claim[:2] in service._emergency_uses:
                        self.aborted = "uses_exhausted"
                        return False
                    service._emergency_uses.add(claim[:2])
                return True
            log.error(
                "session %s: audit write failed (%s); failing closed",
                self.machine.facts.session,
                exc.code,
            )
            if SessionState.UNLOCKING in self.machine.history and any(
                s in self.machine.history for s in (SessionState.OPEN, SessionState.RELOCKING)
            ):
                # The door already moved: keep relocking whatever the log says.
                return True
            self.aborted = "storage_unavailable"
            return False

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
            log.warning(
                "owner attention: %s (session %s, door %s)",
                effect.reason,
                self.machine.facts.session,
                self.machine.facts.door,
            )
            if effect.reason == "relock_failed":
                self._schedule_retry()
            return []
        raise AssertionError(f"unhandled effect {effect!r}")

    async def _unlock(self) -> Event:
        slot = self.slot
        if slot is None:
            return UnlockFailed("lock_unavailable")
        timeout = self.service.settings.lock_timeout_s
        if self.arrived is not None:
            self.service.timing.samples.append(time.perf_counter() - self.arrived)
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
        timeout = self.service.settings.lock_timeout_s
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
        witness = self.service.witness
        if witness is None:
            return Relocked(status)
        return Relocked(status, scene=witness.relock_scene())

    def _schedule_retry(self) -> None:
        settings = self.service.settings
        attempt = self.machine.relock_attempts
        delay = min(
            settings.relock_retry_max_s, settings.relock_retry_initial_s * 2 ** (attempt - 1)
        )

        async def retry() -> None:
            await asyncio.sleep(delay)
            await self.handle(RetryRelock(attempt))

        self._timers["retry"] = self.service.spawn(
            retry(), f"relock retry {self.machine.facts.session}"
        )

    def _arm(self, name: str, seconds: float, event: Event) -> None:
        self._cancel_timer(name)

        async def fire() -> None:
            await asyncio.sleep(seconds)
            await self.handle(event)

        self._timers[name] = self.service.spawn(
            fire(), f"{name} timer {self.machine.facts.session}"
        )

    def _cancel_timer(self, name: str) -> None:
        task = self._timers.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
