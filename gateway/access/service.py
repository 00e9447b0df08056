"""The access service: every door's sessions, and the one entry point for courier and owner.

For a request, :class:`AccessService` gathers the facts (the challenge the store consumed,
the time floor, the revocations held, the camera, the store's health, whether the
door is free), asks the pure :func:`gateway.access.admission.admit`, reserves the door, and
hands the session to a :class:`~gateway.access.runner.SessionRunner`. It also answers the
owner's acts (approvals, revocations, a manual lock or unlock) and queries (the audit log's
events, the sessions), reconciles unfinished sessions at start and relocks at shutdown.

Rules the service keeps:

* one session per door: the door is checked and reserved with no await in between;
* fail closed: a store error before the unlock ends the request with
  ``storage_unavailable`` and nothing is sent to the lock (emergency tickets go on, loudly);
* the time floor has one owner, the store: every request reads it from the ledger in the
  transaction that takes its challenge (no extra round trip, no copy kept here), a trusted
  raise (the relay's signed time, :meth:`AccessService.raise_time_floor`) is ruled on and
  written there in one transaction, never past the local clock plus the skew, so it counts
  from the next request on; a floor found far ahead at start is reported, and only the
  owner's reset (:meth:`AccessService.reset_time_floor`) moves it back;
* every refusal is an :class:`~gateway.access.errors.AccessRefused` (or, for an owner's
  document that does not verify, :class:`~gateway.access.errors.DocumentRejected`) with an
  :class:`~gateway.access.errors.AccessCode`; transports map codes to their own statuses;
* what happens is reported to one :class:`~gateway.access.observer.AccessObserver`.

The module is a little over 500 lines because the owner's acts (approve, revocations, the
manual lock) share the session registry and the door slots with the courier's path; the
decisions themselves live in :mod:`gateway.access.admission` and the session machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from ble.driver import LockDriver, LockStatus
from ble.errors import LockError
from gateway.access.admission import (
    AccessRequest,
    AccessSettings,
    Admitted,
    ApprovalFacts,
    RequestFacts,
    admit,
    admit_approved,
)
from gateway.access.errors import AccessCode, AccessRefused, DocumentRejected, Refusal
from gateway.access.observer import (
    AccessObserver,
    LoggingObserver,
    OwnerNotification,
    RequestRefused,
)
from gateway.access.policy import AwaitApproval
from gateway.access.ports import EntryWitness, FloorReset, Ledger
from gateway.access.runner import DoorSlot, SessionContext, SessionRunner, SessionView
from gateway.access.session import (
    AccessSession,
    ApprovalGiven,
    ApprovalRefused,
    ApprovalRequired,
    ApprovalVoided,
    CameraStalled,
    Denied,
    DoorSensed,
    Granted,
    NotificationKind,
    Reconciled,
    RelockCause,
    RelockRequested,
    SessionFacts,
    SessionState,
)
from gateway.errors import GatewayError
from gateway.trust.approval import decode_approval
from gateway.trust.clock import floor_ahead
from gateway.trust.revocation import Revocation, RevokedKind, key_text
from gateway.trust.verification import (
    ChallengeRecord,
    HeldRevocations,
    Reason,
    decode_revocations,
    verify_approval,
    verify_holder_proof,
)
from store.commitment import visit_secret
from store.errors import StoreError

log = logging.getLogger("threshold.access")

SESSION_ID_BYTES = 12
KEEP_FINISHED_SESSIONS = 1000
OWNER_SESSIONS_SHOWN = 200


class AccessService:
    """Every door's sessions; the API's one entry point for courier and owner actions."""

    def __init__(
        self,
        settings: AccessSettings,
        ledger: Ledger,
        drivers: Mapping[str, LockDriver],
        *,
        camera_live: Callable[[str], bool] | None = None,
        witness: EntryWitness | None = None,
        observer: AccessObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.doors = {name: DoorSlot(name, driver) for name, driver in drivers.items()}
        if camera_live is None:
            camera_live = witness.live if witness is not None else (lambda door: False)
        self.camera_live = camera_live
        self.clock = clock
        self._context = SessionContext(
            settings=settings,
            ledger=ledger,
            observer=observer if observer is not None else LoggingObserver(),
            spawn=self.spawn,
            changed=self.notify_changed,
            witness=witness,
            clock=clock,
        )
        self._runners: OrderedDict[str, SessionRunner] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Every revocation held (the ledger's union), read at start and replaced by what
        #: the ledger holds after each list it adds.
        self._revocations = HeldRevocations()
        #: Keys stopped on this gateway only (a visitor's invitation withdrawn in the owner
        #: app, docs/visitors.md), checked with the owner's lists; held in memory, given again
        #: at each start by their owner (gateway.owner.invitations).
        self._local_revocations = HeldRevocations()
        self._memory_challenges: dict[bytes, ChallengeRecord] = {}
        #: Requests refused before any signature verified, or without the holder's proof of
        #: possession (not audited: see gateway.access.admission).
        self.unauthenticated_refusals = 0
        self._closing = False
        self.reconciled = 0
        self._changed = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        # Uses journaled in an outage are spent, whether or not the store takes them now.
        for issuer_kid, jti in self.ledger.journaled_uses():
            self._context.memory_uses.take(issuer_kid, jti)
        await self._replay_outage(settle=False)
        await self._check_time_floor()
        self._revocations = await self.ledger.revocations(self.settings.anchors)
        for slot in self.doors.values():
            slot.unsubscribe = slot.driver.subscribe(self._status_callback(slot))
        await self.reconcile()

    async def _replay_outage(self, *, settle: bool = True) -> bool:
        """Once the store can write again, and before any grant: write what the outage
        journal holds into it, then close any session row the outage left open that no live
        session is behind (issue 11, finding 4). False: the store still cannot take it."""
        health = self._context.health
        if not health.outage and not self.ledger.outage_pending():
            return True
        try:
            count = await self.ledger.replay()
            # At start, reconcile() (which reads the lock) ends the rows left open instead.
            settled = await self._settle_stale_rows() if settle else 0
        except StoreError as exc:
            health.failed()
            log.error("the store still cannot take what the outage left (%s)", exc.code)
            return False
        health.writable = True
        health.outage = False
        if count or settled:
            log.warning(
                "after the outage: %d journaled batch(es) written, %d stale session row(s) closed",
                count,
                settled,
            )
        return True

    async def _settle_stale_rows(self) -> int:
        """Close every unfinished session row whose session is not live in this run.

        Every session of this run has a runner (dropped only once finished) and every row
        from before the start was reconciled, so such a row is one whose last steps an
        outage kept from the store: it would hold its door in the store, and every new
        session on that door would be refused, until a restart.
        """
        settled = 0
        for record in await self.ledger.unfinished_sessions():
            runner = self._runners.get(record.facts.session)
            if runner is not None and not runner.machine.ended:
                continue
            state = runner.machine.shown_state if runner is not None else record.state.value
            await self.ledger.settle(record.facts, state)
            settled += 1
        return settled

    def _status_callback(self, slot: DoorSlot) -> Callable[[LockStatus], None]:
        def on_status(status: LockStatus) -> None:
            runner = slot.session
            if runner is not None and runner.machine.state is SessionState.OPEN:
                runner.submit(DoorSensed(status.door))

        return on_status

    async def reconcile(self) -> None:
        """Bring every session the store holds unfinished to an end (invariant 3)."""
        for record in await self.ledger.unfinished_sessions():
            slot = self.doors.get(record.facts.door)
            machine = AccessSession.restore(record.facts, record.state)
            runner = SessionRunner(
                self._context, machine, slot, record.holder_key, record.created_at
            )
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
            for runner in list(self._runners.values())
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

    async def raise_time_floor(self, moment: datetime) -> datetime | None:
        """A trusted time source (the relay's signed time) says it is at least ``moment``.

        The floor has one owner, the store: the ledger applies the rule (never past the local
        clock plus the ticket skew, :func:`gateway.trust.clock.raised_floor_ms`) and records
        the raise in one transaction, and every request reads the floor from there, so the
        raise counts from the next request on. Returns the floor afterwards.
        """
        return await self.ledger.raise_time_floor(moment, self.clock(), self.settings.skew)

    async def reset_time_floor(self) -> FloorReset:
        """The owner's signed act: set a floor that is ahead of the local clock back to it,
        recorded as ``clock.floor_reset`` with the old and new values (issue 11, finding 1)."""
        reset = await self.ledger.reset_time_floor(self.clock())
        if reset.changed:
            log.warning(
                "time floor reset by the owner: %s -> %s",
                _iso(reset.old_ms),
                _iso(reset.new_ms),
            )
        return reset

    async def _check_time_floor(self) -> None:
        """At start: a floor more than the skew ahead of the clock refuses every time-bound
        ticket (``clock_untrusted``), so it is reported loudly: an ERROR line, an audit
        entry and an owner notification. Only the owner's reset moves it back."""
        floor = await self.ledger.time_floor()
        now = self.clock()
        ahead = floor_ahead(floor, now, self.settings.skew)
        if ahead is None or floor is None:
            return
        text = (
            f"the time floor ({floor.isoformat()}) is {ahead.total_seconds():.0f} s ahead of "
            f"the gateway's clock ({now.isoformat()}): tickets other than emergency ones are "
            "refused as clock_untrusted; if the clock is right, reset the floor with "
            "`threshold owner clock reset`"
        )
        log.error("clock: %s", text)
        await self.ledger.record(
            "clock.floor_ahead",
            {
                "floor_ms": int(floor.timestamp() * 1000),
                "local_ms": int(now.timestamp() * 1000),
                "ahead_s": int(ahead.total_seconds()),
            },
        )
        self._context.observe(
            OwnerNotification(NotificationKind.CLOCK_FLOOR_AHEAD, "", "", "", "", text)
        )

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
        self._runners[runner.machine.facts.session] = runner
        while len(self._runners) > KEEP_FINISHED_SESSIONS:
            oldest_id, oldest = next(iter(self._runners.items()))
            if not oldest.machine.finished:
                break
            del self._runners[oldest_id]

    def _refuse(self, refusal: Refusal, door: str, session: str | None = None) -> NoReturn:
        self._context.observe(RequestRefused(refusal.code, door, session))
        raise AccessRefused.of(refusal)

    # -- courier actions -----------------------------------------------------------------------

    async def issue_challenge(self) -> ChallengeRecord:
        now = self.clock()
        try:
            record = await self.ledger.issue_challenge(self.settings.challenge_ttl, now)
            self._context.health.writable = True
        except StoreError as exc:
            # Only an emergency ticket can use this challenge (every other request fails
            # closed on the same broken store), so it is kept in memory, loudly.
            self._context.health.failed()
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
        Raises :class:`AccessRefused` for every no (:class:`DocumentRejected` for a carried
        revocation list that does not verify).
        """
        if self._closing:
            self._refuse(
                Refusal(AccessCode.LOCK_UNAVAILABLE, "the gateway is shutting down"), request.door
            )
        slot = self.doors.get(request.door)
        if slot is None:
            detail = f"this gateway has no door {request.door!r}"
            self._refuse(Refusal(AccessCode.WRONG_DOOR, detail), request.door)
        now = self.clock()
        if request.revocations is not None:
            await self._accept_revocations(request.revocations)
        # What an outage left in the journal reaches the store before any grant; while it
        # cannot, only an emergency goes on (its single use is in memory and the journal).
        store_failed = not await self._replay_outage()
        try:
            taken = await self.ledger.take_challenge(request.nonce, now)
            challenge, floor = taken.challenge, taken.time_floor
        except StoreError as exc:
            store_failed = True
            self._context.health.failed()
            log.error("store failed while checking a request (%s)", exc.code)
            challenge = self._memory_challenges.pop(request.nonce, None)
            # Only an emergency goes on from here. The floor cannot be read, and no copy of it
            # is kept outside the store (its one owner): the ticket is judged at the clock.
            floor = None
        # Invariant 4: from here to the reservation below there is no await.
        current = slot.session
        admission = admit(
            request,
            RequestFacts(
                now=now,
                session_id=_new_session_id(),
                challenge=challenge,
                store_failed=store_failed,
                revocations=self._held(),
                time_floor=floor,
                camera_live=self.camera_live(request.door),
                storage_writable=self._context.health.writable,
                door_free=current is None or current.machine.ended,
            ),
            self.settings,
        )
        if not isinstance(admission, Admitted):
            if admission.facts is None:
                self.unauthenticated_refusals += 1
            if not admission.audited or admission.facts is None:
                session = admission.facts.session if admission.facts else None
                self._refuse(admission.refusal, request.door, session)
            await self._deny(admission.facts, admission.holder_key, admission.refusal, now)
        facts = admission.facts
        # Before the first entry: the session's entries carry the visitor's visit tag.
        self.ledger.bind_visit(facts.session, visit_secret(request.proof))
        runner = SessionRunner(
            self._context,
            AccessSession(facts, use=admission.use),
            slot,
            admission.holder_key,
            now,
            arrived=arrived,
        )
        slot.session = runner
        self._remember(runner)

        decision = admission.decision
        if isinstance(decision, AwaitApproval):
            runner.waiting_request = request
            await runner.handle(ApprovalRequired(decision.timeout_s))
        else:
            await runner.handle(
                Granted(alarm=decision.alarm is not None, alarm_reason=decision.alarm or "")
            )
        if runner.machine.aborted is AccessCode.USES_EXHAUSTED:
            self._runners.pop(facts.session, None)
            used_up = Refusal(AccessCode.USES_EXHAUSTED, "ticket already used up")
            await self._deny(facts, admission.holder_key, used_up, now)
        refusal = runner.machine.refusal()
        if refusal is not None:
            self._refuse(refusal, facts.door, facts.session)
        return runner.view()

    async def _deny(
        self, facts: SessionFacts, holder_key: bytes, refusal: Refusal, now: datetime
    ) -> NoReturn:
        """Record a refusal of a genuine ticket (requested -> denied) and answer no."""
        runner = SessionRunner(self._context, AccessSession(facts), None, holder_key, now)
        await runner.handle(Denied(refusal.code.value, refusal.detail))
        self._refuse(refusal, facts.door, facts.session)

    async def _accept_revocations(self, token: str) -> None:
        """Add an owner-signed list for this gateway to the revocations held (the ledger keeps
        the union: no list, whatever its ``seq``, takes an entry away). Anything that does not
        verify, or is for another gateway, is rejected."""
        try:
            incoming = decode_revocations(
                token, self.settings.anchors, gateway_id=self.settings.gateway_id
            )
        except GatewayError as exc:
            raise DocumentRejected.of(exc, "revocation list") from None
        if self._revocations.covers(incoming):
            return
        try:
            self._revocations = await self.ledger.add_revocations(incoming, token)
        except StoreError as exc:
            raise AccessRefused(
                AccessCode.STORAGE_UNAVAILABLE, f"cannot store revocations ({exc.code})"
            ) from None

    def camera_stalled(self, doors: Collection[str] | None = None) -> int:
        """A camera stopped delivering frames: relock early every open door it watches
        (``doors``; None: every door) (invariant 6; Amazon Key's 2017 frozen-camera attack).
        The camera component calls this; returns how many sessions were told to relock (a
        session mid-unlock relocks once it is open)."""
        count = 0
        for slot in self.doors.values():
            runner = slot.session
            if doors is not None and slot.name not in doors:
                continue
            if runner is not None and runner.machine.opening_or_open:
                runner.submit(CameraStalled())
                count += 1
        return count

    def view(self, session_id: str) -> SessionView | None:
        runner = self._runners.get(session_id)
        return runner.view() if runner is not None else None

    async def done(self, session_id: str, nonce: bytes, proof: bytes) -> SessionView:
        """The courier says they are out: check a fresh proof by the same holder, relock."""
        runner = self._runners.get(session_id)
        if runner is None:
            raise AccessRefused(AccessCode.NOT_FOUND, f"no session {session_id}")
        try:
            taken = await self.ledger.take_challenge(nonce, self.clock())
        except StoreError as exc:
            raise AccessRefused(
                AccessCode.STORAGE_UNAVAILABLE, f"the gateway's store failed ({exc.code})"
            ) from None
        holder = _HolderOnly(runner.machine.facts.jti, runner.holder_key)
        reason = verify_holder_proof(
            holder,  # type: ignore[arg-type]
            gateway_id=self.settings.gateway_id,
            challenge=taken.challenge,
            proof=proof,
            now=self.clock(),
            action="done",
        )
        if reason is not Reason.OK:
            raise AccessRefused(AccessCode.of(reason), "proof of possession for done failed")
        if runner.machine.state is SessionState.OPEN:
            await runner.handle(RelockRequested(RelockCause.DONE))
        return runner.view()

    async def receipt(self, session_id: str) -> dict[str, Any] | None:
        try:
            return await self.ledger.receipt(session_id)
        except StoreError as exc:
            log.error("no receipt for session %s (%s)", session_id, exc.code)
            return None

    # -- owner queries -------------------------------------------------------------------------

    async def events(self, since: int, limit: int) -> list[dict[str, Any]]:
        """The audit log's entries from index ``since`` on, at most ``limit``. Each carries
        ``verified`` (and ``unverified`` with the status, field and reason when false): the
        owner's views show a row as checked only when its readable copy is what the signed
        leaf commits to (docs/audit-log.md, "What is shown is what is signed")."""
        try:
            return await self.ledger.events(since, limit)
        except StoreError as exc:
            raise AccessRefused(
                AccessCode.STORAGE_UNAVAILABLE, f"the gateway's store failed ({exc.code})"
            ) from None

    def sessions(self, limit: int = OWNER_SESSIONS_SHOWN) -> list[SessionView]:
        """The most recent sessions this run knows, oldest first (open ones included)."""
        runners = list(self._runners.values())
        return [runner.view() for runner in runners[-limit:]]

    # -- owner actions -------------------------------------------------------------------------

    async def approve(self, token: str) -> SessionView:
        try:
            approval = decode_approval(token, self.settings.anchors)
        except GatewayError as exc:
            raise DocumentRejected.of(exc, "approval") from None
        runner = self._runners.get(approval.session)
        if runner is None:
            raise AccessRefused(AccessCode.NOT_FOUND, f"no session {approval.session}")
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
                AccessCode.NOT_AWAITING_APPROVAL,
                f"session is {runner.machine.state.value}, not awaiting approval",
            )
        if verdict.allowed:
            await self._admit_approved(runner)
        elif verdict.reason is Reason.APPROVAL_DECLINED:
            await runner.handle(ApprovalRefused(by="owner"))
        else:
            raise DocumentRejected(AccessCode.of(verdict.reason), verdict.detail)
        return runner.view()

    async def decide(self, session_id: str, allow: bool, by: str) -> SessionView:
        """Approve or refuse a waiting session for an owner the caller has authenticated.

        The owner app's path: the caller checked a fresh user-verified passkey assertion over
        exactly this act (:mod:`gateway.owner`); ``by`` names the device and goes into the
        session's ``granted`` or ``denied`` entry. The root-key path is :meth:`approve`.
        """
        runner = self._runners.get(session_id)
        if runner is None:
            raise AccessRefused(AccessCode.NOT_FOUND, f"no session {session_id}")
        if runner.machine.state is not SessionState.AWAITING_APPROVAL:
            raise AccessRefused(
                AccessCode.NOT_AWAITING_APPROVAL,
                f"session is {runner.machine.state.value}, not awaiting approval",
            )
        if allow:
            await self._admit_approved(runner, by=by)
        else:
            await runner.handle(ApprovalRefused(by=by))
        return runner.view()

    async def _admit_approved(self, runner: SessionRunner, *, by: str = "owner") -> None:
        """Open a session the owner approved, if every check that can have changed while it
        waited still holds (issue 11, finding 6); else deny it, recorded, as
        ``approval_voided`` naming the check, and answer no."""
        request = runner.waiting_request
        try:
            floor: datetime | None = await self.ledger.time_floor()
            store_ok = True
        except StoreError as exc:
            log.error("store failed while checking an approval (%s)", exc.code)
            floor, store_ok = None, False
        # Another approval (a second device, a mailbox copy) may have decided it meanwhile.
        if runner.machine.state is not SessionState.AWAITING_APPROVAL:
            raise AccessRefused(
                AccessCode.NOT_AWAITING_APPROVAL,
                f"session is {runner.machine.state.value}, not awaiting approval",
            )
        # From here to the event there is no await: the facts are those of this moment.
        if request is None:
            refusal: Refusal | None = Refusal(
                AccessCode.GATEWAY_RESTARTED, "the session's request is no longer held"
            )
        else:
            refusal = admit_approved(
                request,
                ApprovalFacts(
                    now=self.clock(),
                    revocations=self._held(),
                    time_floor=floor,
                    camera_live=self.camera_live(request.door),
                    storage_writable=store_ok and self._context.health.writable,
                ),
                self.settings,
            )
        if refusal is None:
            await runner.handle(ApprovalGiven(by=by))
            return
        facts = runner.machine.facts
        log.warning(
            "session %s: the owner's approval is void (%s: %s)",
            facts.session,
            refusal.code.value,
            refusal.detail,
        )
        await runner.handle(ApprovalVoided(refusal.code.value, refusal.detail))
        voided = Refusal(
            AccessCode.APPROVAL_VOIDED,
            f"approved too late: {refusal.code.value} ({refusal.detail})",
        )
        self._refuse(voided, facts.door, facts.session)

    def revoke_here(self, public_key: bytes, until: datetime) -> None:
        """Stop a holder's key on this gateway at once, until ``until`` (its tickets' end)."""
        entry = Revocation(RevokedKind.KEY, key_text(public_key), until)
        self._local_revocations = HeldRevocations.of(
            [*self._local_revocations.entries(), entry], None
        )

    def _held(self) -> HeldRevocations:
        """The owner's lists and this gateway's own stopped keys, as one."""
        if not self._local_revocations:
            return self._revocations
        entries = [*self._revocations.entries(), *self._local_revocations.entries()]
        return HeldRevocations.of(entries, self._revocations.seq)

    async def set_revocations(self, token: str) -> int:
        """Add an owner-signed list (see :meth:`_accept_revocations`); the highest ``seq``
        held afterwards."""
        await self._accept_revocations(token)
        return self._revocations.seq or 0

    async def owner_lock(self, door: str, action: str, *, by: str = "owner") -> LockStatus:
        """A manual lock or unlock by the owner, recorded as the owner's act; ``by`` names
        who acted for the owner (``owner`` for the root key's signature, an owner device's id
        for the app, or the broker identity of a Home Assistant command)."""
        slot = self.doors.get(door)
        if slot is None:
            raise AccessRefused(AccessCode.NOT_FOUND, f"no door {door!r}")
        if action not in ("lock", "unlock"):
            raise AccessRefused(AccessCode.BAD_REQUEST, "action must be lock or unlock")
        runner = slot.session
        if action == "lock" and runner is not None and runner.machine.state is SessionState.OPEN:
            await runner.handle(RelockRequested(RelockCause.OWNER))
            return await self._read(slot)
        if action == "unlock" and runner is not None and not runner.machine.finished:
            raise AccessRefused(AccessCode.DOOR_BUSY, f"door {door} is in use by a session")
        try:
            await self.ledger.record(f"owner.{action}", {"door": door, "by": by})
        except StoreError as exc:
            raise AccessRefused(
                AccessCode.STORAGE_UNAVAILABLE, f"cannot record the owner's act ({exc.code})"
            ) from None
        try:
            if action == "unlock":
                status = await asyncio.wait_for(slot.driver.unlock(), self.settings.lock_timeout_s)
            else:
                await asyncio.wait_for(slot.driver.lock(), self.settings.lock_timeout_s)
                status = await self._read(slot)
        except (LockError, TimeoutError) as exc:
            code = getattr(exc, "code", None) or type(exc).__name__
            raise AccessRefused(
                AccessCode.LOCK_UNAVAILABLE, f"the lock did not answer ({code})"
            ) from None
        with contextlib.suppress(StoreError):
            await self.ledger.record(
                f"owner.{action}.done", {"door": door, "lock": status.lock.value}
            )
        return status

    async def _read(self, slot: DoorSlot) -> LockStatus:
        return await asyncio.wait_for(slot.driver.status(), self.settings.lock_timeout_s)

    async def read_door(self, door: str, timeout_s: float | None = None) -> LockStatus:
        """One reading of ``door``'s lock (the owner app's "now"); LockError or TimeoutError."""
        slot = self.doors.get(door)
        if slot is None:
            raise AccessRefused(AccessCode.NOT_FOUND, f"no door {door!r}")
        limit = self.settings.lock_timeout_s if timeout_s is None else timeout_s
        return await asyncio.wait_for(slot.driver.status(), limit)

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


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _new_session_id() -> str:
    return "s-" + secrets.token_hex(SESSION_ID_BYTES)
