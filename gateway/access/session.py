"""The access session: one visit to one door, as a pure state machine (docs/architecture.md,
"the path of one request").

The module is longer than most (about 700 lines) on purpose: the events, the effects and the
transition table are one closed vocabulary, and splitting them would scatter the one place a
reader checks that every state answers every event.

Theory of operation
===================

An :class:`AccessSession` is what happens between a visitor asking to come in and the door
being locked again behind them. It is written in the sans-IO style of h11: the class holds
the state and nothing else, it never awaits, never touches the lock or the disk. The async
runner (:mod:`gateway.access.runner`) feeds it *events* (things that happened: the policy allowed
the request, the lock reported unlocked, the courier said done, a timer ran out) and gets
back *effects* (things that must now happen, in this order: write an audit entry, send an
unlock, arm a timer). The runner performs the effects one by one, awaiting each, and turns
what came of them into the next events.

The runner's own decisions live here too, so that they are pure and tested alone: what a
failed audit write means (:meth:`AccessSession.record_failed`: fail closed before the door
moved, keep relocking after, and an emergency goes on but stays single use through
:class:`MemoryUses`), what a camera stall does (:class:`CameraStalled`: relock an open door;
the runner delivers events one at a time, so a stall during the unlock is handled once the
unlock is done), and how a request that did not open ends (:meth:`AccessSession.refusal`).

The states and the only transitions between them::

    requested -> denied
    requested -> awaiting_approval -> denied | granted
    requested -> granted -> unlocking -> open -> relocking -> closed
                                      \\-> failed              \\-> alarm -> relocking (retry)

The invariants. Code, tests and docs cite them as "session invariant n" (the path of one
request through them: docs/architecture.md; the lock's side: docs/locks.md "What the driver
guarantees"; the camera's: docs/camera.md "In the gateway: filming every entry").

1. **Write-ahead audit.** Every transition emits :class:`AppendAudit` *before* any lock
   command it causes. Granting yields ``[AppendAudit(granted), AppendAudit(unlocking),
   SendUnlock]``; the runner awaits each effect, and ``AppendAudit`` completes only once the
   entry is durable, so no unlock leaves the gateway before its ``granted`` entry is on disk.
2. **No blind unlock retry.** There is no transition that emits a second :class:`SendUnlock`.
   If the unlock's outcome is unknown the runner reports :class:`UnlockOutcomeUnknown` with
   whatever a state read found; the machine then decides from that reading (unlocked: open;
   locked: failed; unreadable: relock, because a lock command is always safe to repeat).
3. **Reconciliation.** After a restart the runner rebuilds each session that was not finished
   with :meth:`AccessSession.restore` and feeds it :class:`Reconciled` with a fresh reading of
   the lock, before any request is accepted: a session that never unlocked is denied; one
   that may have unlocked is closed if the lock reads locked and relocked otherwise.
4. **One session per door.** The runner checks and reserves the door with no ``await`` in
   between, and the store refuses a second unfinished session for a door.
5. **Always relock.** From ``open`` every way out (done, door closed after it was opened, the
   ``open_s`` timer, the camera stalling, the owner, shutdown) goes to ``relocking`` with a
   :class:`SendLock`. A relock counts only when a state read says *locked*; anything else is
   ``alarm``, from which the runner retries with backoff (:class:`RetryRelock`).
6. **A frozen camera relocks.** A camera that stops delivering frames while a door is open
   relocks it early, and ``camera.stalled`` and ``alarm.raised`` are written in the same
   durable batch as the relock (Amazon Key's 2017 frozen-camera attack).

An event that makes no sense in the current state raises :class:`SessionProtocolError`
(never a silent no-op), except the few that are naturally late (a door-sensor report after
the relock started, a timer that fired just as the courier said done); those are ignored and
return no effects, which the tests pin down one by one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from ble.driver import DoorState, LockState, LockStatus
from gateway.access.errors import AccessCode, Refusal
from gateway.errors import GatewayError

AuditValue = str | int | bool | None


class SessionState(enum.Enum):
    REQUESTED = "requested"
    DENIED = "denied"
    AWAITING_APPROVAL = "awaiting_approval"
    GRANTED = "granted"
    UNLOCKING = "unlocking"
    OPEN = "open"
    RELOCKING = "relocking"
    CLOSED = "closed"
    FAILED = "failed"
    ALARM = "alarm"


#: States a session never leaves: the door needs nothing more from it.
FINISHED_STATES = frozenset({SessionState.DENIED, SessionState.CLOSED, SessionState.FAILED})

#: States in which the lock may be unlocked, so the door belongs to this session.
DOOR_HOLDING_STATES = frozenset(
    {
        SessionState.GRANTED,
        SessionState.UNLOCKING,
        SessionState.OPEN,
        SessionState.RELOCKING,
        SessionState.ALARM,
    }
)


class RelockCause(enum.Enum):
    DONE = "done"
    DOOR_CLOSED = "door_closed"
    OPEN_TIMEOUT = "open_timeout"
    CAMERA_STALLED = "camera_stalled"
    OWNER = "owner"
    SHUTDOWN = "shutdown"
    UNLOCK_UNCERTAIN = "unlock_uncertain"
    RECONCILE = "reconcile"


class NotificationKind(enum.StrEnum):
    """Why the owner is told something (the owner app's notifier keys on these)."""

    APPROVAL_NEEDED = "approval"
    EMERGENCY_ENTRY = "emergency"
    RELOCK_FAILED = "relock_failed"
    CAMERA_STALLED = "camera_stalled"
    #: At start, the time floor was found more than the skew ahead of the clock.
    CLOCK_FLOOR_AHEAD = "clock_floor_ahead"
    #: The ticket's open time ran out with the door still standing open (it is relocked
    #: all the same; a bolt thrown into an open door may not hold it shut).
    DOOR_LEFT_OPEN = "door_left_open"


#: The purpose whose tickets open in every condition, loudly, and only once.
EMERGENCY_PURPOSE = "emergency"


class SessionProtocolError(GatewayError):
    """An event arrived that the session's current state cannot accept (a runner bug)."""

    code = "session_protocol_error"


# ---------------------------------------------------------------------------------------------
# Events: what happened.


@dataclass(frozen=True, slots=True)
class Denied:
    """The ticket or the policy refused the request; ``code`` is the stable problem code."""

    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Granted:
    """The policy allowed the request (``alarm``: allowed only as an emergency, loudly)."""

    alarm: bool = False
    alarm_reason: str = ""
    #: What the camera saw at the grant (motion facts), stored with the ``granted`` entry.
    scene: Mapping[str, AuditValue] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class ApprovalRequired:
    """The policy needs the owner's live approval before anything else happens."""

    timeout_s: float


@dataclass(frozen=True, slots=True)
class ApprovalGiven:
    by: str = "owner"
    scene: Mapping[str, AuditValue] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class ApprovalRefused:
    by: str = "owner"


@dataclass(frozen=True, slots=True)
class ApprovalTimedOut:
    pass


@dataclass(frozen=True, slots=True)
class ApprovalVoided:
    """The owner approved, but a check that can change while a session waits no longer
    holds (``cause``: its code, e.g. ``revoked``): denied as ``approval_voided``."""

    cause: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Unlocked:
    """The unlock completed and the lock reports ``status``."""

    status: LockStatus


@dataclass(frozen=True, slots=True)
class UnlockFailed:
    """The lock refused or failed the unlock, its state known not to be unlocked."""

    code: str


@dataclass(frozen=True, slots=True)
class UnlockOutcomeUnknown:
    """The link dropped during the unlock; ``status`` is a fresh reading, or None."""

    status: LockStatus | None


@dataclass(frozen=True, slots=True)
class DoorSensed:
    """The door sensor reported ``door``."""

    door: DoorState


@dataclass(frozen=True, slots=True)
class RelockRequested:
    cause: RelockCause


@dataclass(frozen=True, slots=True)
class Relocked:
    """The relock command returned; ``status`` is the state read that verifies it.

    ``scene``: what the camera saw at the relock (did the scene go quiet?), stored with the
    ``closed`` entry.
    """

    status: LockStatus
    scene: Mapping[str, AuditValue] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class RelockFailed:
    code: str


@dataclass(frozen=True, slots=True)
class RetryRelock:
    attempt: int


@dataclass(frozen=True, slots=True)
class Reconciled:
    """After a restart: what the lock read, or None when it could not be read."""

    status: LockStatus | None


@dataclass(frozen=True, slots=True)
class CameraStalled:
    """The camera stopped delivering frames (invariant 6): an open door relocks early."""


Event = (
    Denied
    | Granted
    | ApprovalRequired
    | ApprovalGiven
    | ApprovalRefused
    | ApprovalTimedOut
    | ApprovalVoided
    | Unlocked
    | UnlockFailed
    | UnlockOutcomeUnknown
    | DoorSensed
    | RelockRequested
    | Relocked
    | RelockFailed
    | RetryRelock
    | Reconciled
    | CameraStalled
)


# ---------------------------------------------------------------------------------------------
# Effects: what must happen now, in order.


@dataclass(frozen=True, slots=True)
class AppendAudit:
    """Write one audit entry and wait until it is durable before the next effect."""

    kind: str
    session: str
    door: str
    state: SessionState
    detail: Mapping[str, AuditValue] = field(default_factory=lambda: MappingProxyType({}))

    def record(self) -> dict[str, AuditValue]:
        """The entry as a flat JSON-able mapping, as the audit log stores it."""
        return {
            "kind": self.kind,
            "session": self.session,
            "door": self.door,
            "state": self.state.value,
            **self.detail,
        }


@dataclass(frozen=True, slots=True)
class SendUnlock:
    pass


@dataclass(frozen=True, slots=True)
class SendLock:
    """Send a lock command and then read the state to verify it (answer with Relocked)."""


@dataclass(frozen=True, slots=True)
class ArmOpenTimer:
    seconds: float


@dataclass(frozen=True, slots=True)
class ArmApprovalTimer:
    seconds: float


@dataclass(frozen=True, slots=True)
class NotifyOwner:
    """Tell the owner something needs them (an approval, an alarm).

    ``reason`` is the precise why when it says more than the kind (``emergency+camera_down``).
    """

    kind: NotificationKind
    reason: str = ""

    @property
    def text(self) -> str:
        return self.reason or self.kind.value


Effect = AppendAudit | SendUnlock | SendLock | ArmOpenTimer | ArmApprovalTimer | NotifyOwner


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What a session knows about itself from the start, carried into every audit entry."""

    session: str
    door: str
    jti: str
    subject: str
    purpose: str
    open_s: float
    #: Who issued the ticket (its ``iss``), shown to the owner; "" when not known (a session
    #: restored from the store after a restart).
    issuer: str = ""


class MemoryUses:
    """Emergency uses counted in memory while the store cannot count them.

    An emergency ticket opens even when the audit log cannot be written, but it stays single
    use: the second presentation during the same outage finds it here. Keyed, as the store's
    counts are, on the issuer's key id and the ticket id: another issuer reusing the id cannot
    use this ticket up. One per service.
    """

    def __init__(self) -> None:
        self._used: set[tuple[str, str]] = set()

    def take(self, issuer_kid: str, jti: str) -> bool:
        """Count the ticket's one use; False when it was already counted."""
        if (issuer_kid, jti) in self._used:
            return False
        self._used.add((issuer_kid, jti))
        return True


class AccessSession:
    """One visit's state machine. Feed events with :meth:`handle`; perform the effects.

    ``use`` = (issuer key id, ticket id, max uses): the use the session's first durable write
    must count (the ledger counts it atomically with the entries); None when nothing is to be
    counted.
    """

    _LATE_EVENTS: ClassVar[tuple[type, ...]] = (DoorSensed, RelockRequested)

    def __init__(self, facts: SessionFacts, use: tuple[str, str, int] | None = None) -> None:
        self.facts = facts
        self.state = SessionState.REQUESTED
        self.reason: str | None = None
        self.door_was_opened = False
        #: The door sensor's last word since the unlock: the door stands open now.
        self.door_is_open = False
        self.relock_attempts = 0
        #: Set when the session ended because its audit entries could not be written (or
        #: its ticket's uses ran out at the write): it takes no more events.
        self.aborted: AccessCode | None = None
        self._use = use
        self._history: list[SessionState] = [SessionState.REQUESTED]

    @classmethod
    def restore(cls, facts: SessionFacts, state: SessionState) -> AccessSession:
        """Rebuild a session from its last durable state (start-up reconciliation)."""
        session = cls(facts)
        session.state = state
        session._history = [state]
        return session

    @property
    def history(self) -> tuple[SessionState, ...]:
        return tuple(self._history)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def holds_door(self) -> bool:
        return self.state in DOOR_HOLDING_STATES

    @property
    def emergency(self) -> bool:
        return self.facts.purpose == EMERGENCY_PURPOSE

    @property
    def ended(self) -> bool:
        """Finished, or aborted: the door needs nothing more from this session."""
        return self.finished or self.aborted is not None

    @property
    def opening_or_open(self) -> bool:
        """A camera stall now relocks this session (at once, or as its unlock completes)."""
        return self.aborted is None and self.state in (
            SessionState.GRANTED,
            SessionState.UNLOCKING,
            SessionState.OPEN,
        )

    @property
    def shown_state(self) -> str:
        """The state as the session's view shows it (an aborted session was denied)."""
        return SessionState.DENIED.value if self.aborted is not None else self.state.value

    @property
    def shown_reason(self) -> str | None:
        return self.aborted.value if self.aborted is not None else self.reason

    # -- the durable record --------------------------------------------------------------------

    @property
    def use_to_count(self) -> tuple[str, str, int] | None:
        """The (issuer key id, ticket id, max uses) to count with the next durable write,
        until one lands."""
        return self._use

    def recorded(self, written: bool) -> bool:
        """The ledger answered a batch: ``written``, or refused because the uses ran out.

        Returns whether the session goes on.
        """
        self._use = None
        if not written:
            self.aborted = AccessCode.USES_EXHAUSTED
            return False
        return True

    def record_failed(self, memory: MemoryUses) -> bool:
        """A batch of audit entries could not be written. Returns whether to go on anyway.

        Fail closed before the door moved (``storage_unavailable``); once it moved, keep
        relocking whatever the log says. An emergency goes on (loudly: the runner logs it),
        its single use counted in ``memory`` instead.
        """
        if self.emergency:
            if self._use is not None:
                issuer_kid, jti, _ = self._use
                self._use = None
                if not memory.take(issuer_kid, jti):
                    self.aborted = AccessCode.USES_EXHAUSTED
                    return False
            return True
        if self.door_moved:
            return True
        self.aborted = AccessCode.STORAGE_UNAVAILABLE
        return False

    @property
    def door_moved(self) -> bool:
        """The unlock was sent and the door opened or is being relocked."""
        history = self._history
        return SessionState.UNLOCKING in history and (
            SessionState.OPEN in history or SessionState.RELOCKING in history
        )

    def refusal(self) -> Refusal | None:
        """How a request that did not open ends, or None when its view is the answer."""
        if self.aborted is not None:
            return Refusal(self.aborted, "the audit log could not be written; nothing was unlocked")
        if self.state is SessionState.DENIED:
            return Refusal(AccessCode.parse(self.reason, AccessCode.DENIED), "denied")
        if self.state in (SessionState.FAILED, SessionState.RELOCKING, SessionState.ALARM) and (
            SessionState.OPEN not in self._history
        ):
            why = self.reason or self.state.value
            return Refusal(AccessCode.LOCK_UNAVAILABLE, f"the lock did not unlock ({why})")
        return None

    # -- the one entry point ------------------------------------------------------------------

    def handle(self, event: Event) -> list[Effect]:
        if self.aborted is not None:
            return []
        handler = _HANDLERS.get((self.state, type(event)))
        if handler is None:
            if isinstance(event, self._LATE_EVENTS) and self.state not in (
                SessionState.REQUESTED,
                SessionState.AWAITING_APPROVAL,
                SessionState.GRANTED,
            ):
                return []
            if isinstance(
                event, (ApprovalTimedOut, ApprovalGiven, ApprovalRefused, ApprovalVoided)
            ) and (self.finished):
                return []
            if isinstance(event, CameraStalled):
                return []  # nothing open to relock
            raise SessionProtocolError(
                f"session {self.facts.session}: {type(event).__name__} "
                f"is not valid in state {self.state.value}"
            )
        return handler(self, event)

    # -- helpers -------------------------------------------------------------------------------

    def _to(self, state: SessionState, **detail: AuditValue) -> AppendAudit:
        self.state = state
        self._history.append(state)
        f = self.facts
        base: dict[str, AuditValue] = {
            "jti": f.jti,
            "sub": f.subject,
            "purpose": f.purpose,
        }
        if f.issuer:
            base["iss"] = f.issuer
        base.update(detail)
        return AppendAudit(
            kind=f"session.{state.value}",
            session=f.session,
            door=f.door,
            state=state,
            detail=MappingProxyType(base),
        )

    def _alarm_entry(self, reason: str) -> AppendAudit:
        f = self.facts
        return AppendAudit(
            kind="alarm.raised",
            session=f.session,
            door=f.door,
            state=self.state,
            detail=MappingProxyType({"reason": reason, "jti": f.jti, "purpose": f.purpose}),
        )

    # -- transitions ---------------------------------------------------------------------------

    def _deny(self, event: Denied) -> list[Effect]:
        self.reason = event.code
        return [self._to(SessionState.DENIED, code=event.code, why=event.detail or None)]

    def _grant(self, event: Granted) -> list[Effect]:
        effects: list[Effect] = [
            self._to(SessionState.GRANTED, alarm=event.alarm, **_scene(event.scene))
        ]
        if event.alarm:
            # The alarm entry is durable before the door moves, like the grant itself.
            effects.append(self._alarm_entry(event.alarm_reason or "emergency"))
            effects.append(
                NotifyOwner(NotificationKind.EMERGENCY_ENTRY, event.alarm_reason or "emergency")
            )
        effects.append(self._to(SessionState.UNLOCKING))
        effects.append(SendUnlock())
        return effects

    def _await_approval(self, event: ApprovalRequired) -> list[Effect]:
        return [
            self._to(SessionState.AWAITING_APPROVAL, timeout_ms=round(event.timeout_s * 1000)),
            ArmApprovalTimer(event.timeout_s),
            NotifyOwner(NotificationKind.APPROVAL_NEEDED),
        ]

    def _approved(self, event: ApprovalGiven) -> list[Effect]:
        return [
            self._to(SessionState.GRANTED, approved_by=event.by, **_scene(event.scene)),
            self._to(SessionState.UNLOCKING),
            SendUnlock(),
        ]

    def _refused(self, event: ApprovalRefused) -> list[Effect]:
        self.reason = "approval_denied"
        return [self._to(SessionState.DENIED, code="approval_denied", by=event.by)]

    def _voided(self, event: ApprovalVoided) -> list[Effect]:
        self.reason = "approval_voided"
        return [
            self._to(
                SessionState.DENIED,
                code="approval_voided",
                cause=event.cause,
                why=event.detail or None,
            )
        ]

    def _approval_timeout(self, event: ApprovalTimedOut) -> list[Effect]:
        self.reason = "approval_denied"
        return [self._to(SessionState.DENIED, code="approval_denied", why="timeout")]

    def _unlocked(self, event: Unlocked) -> list[Effect]:
        if event.status.door is DoorState.OPEN:
            self.door_was_opened = True
            self.door_is_open = True
        return [
            self._to(SessionState.OPEN, lock=event.status.lock.value),
            ArmOpenTimer(self.facts.open_s),
        ]

    def _unlock_failed(self, event: UnlockFailed) -> list[Effect]:
        self.reason = event.code
        return [self._to(SessionState.FAILED, code=event.code)]

    def _unlock_unknown(self, event: UnlockOutcomeUnknown) -> list[Effect]:
        status = event.status
        if status is not None and status.lock is LockState.UNLOCKED:
            return self._unlocked(Unlocked(status))
        if status is not None and status.lock is LockState.LOCKED:
            self.reason = "lock_unavailable"
            return [self._to(SessionState.FAILED, code="lock_unavailable", lock="locked")]
        # Unreadable or in between: never unlock again; locking is always safe to repeat.
        self.reason = "lock_unavailable"
        lock = status.lock.value if status is not None else "unreadable"
        return [
            self._to(SessionState.RELOCKING, cause=RelockCause.UNLOCK_UNCERTAIN.value, lock=lock),
            SendLock(),
        ]

    def _door_sensed_early(self, event: DoorSensed) -> list[Effect]:
        # The bolt may already be free while the motor finishes: remember the door opened.
        if event.door is DoorState.OPEN:
            self.door_was_opened = True
        self.door_is_open = event.door is DoorState.OPEN
        return []

    def _door_sensed(self, event: DoorSensed) -> list[Effect]:
        self.door_is_open = event.door is DoorState.OPEN
        if event.door is DoorState.OPEN:
            self.door_was_opened = True
            return []
        if event.door is DoorState.CLOSED and self.door_was_opened:
            return self._relock(RelockRequested(RelockCause.DOOR_CLOSED))
        return []

    def _relock(self, event: RelockRequested) -> list[Effect]:
        if event.cause is RelockCause.OPEN_TIMEOUT and self.door_is_open:
            # The visit overstayed its ticket with the door open: recorded in the relocking
            # entry itself, and the owner is told (issue 15: a door left open too long).
            return [
                self._to(SessionState.RELOCKING, cause=event.cause.value, door_left_open=True),
                NotifyOwner(
                    NotificationKind.DOOR_LEFT_OPEN,
                    f"door still open after the ticket's {self.facts.open_s:g} s",
                ),
                SendLock(),
            ]
        effects: list[Effect] = [self._to(SessionState.RELOCKING, cause=event.cause.value)]
        if event.cause is RelockCause.CAMERA_STALLED:
            # Invariant 6: the frozen camera is recorded and alarmed in the same durable
            # batch as the relock decision, before the lock command leaves.
            f = self.facts
            effects.append(
                AppendAudit(
                    kind="camera.stalled",
                    session=f.session,
                    door=f.door,
                    state=self.state,
                    detail=MappingProxyType({"jti": f.jti, "action": "relock_early"}),
                )
            )
            effects.append(self._alarm_entry("camera_stalled"))
            effects.append(NotifyOwner(NotificationKind.CAMERA_STALLED))
        effects.append(SendLock())
        return effects

    def _camera_stalled(self, event: CameraStalled) -> list[Effect]:
        return self._relock(RelockRequested(RelockCause.CAMERA_STALLED))

    def _relocked(self, event: Relocked) -> list[Effect]:
        if event.status.lock is LockState.LOCKED:
            return [self._to(SessionState.CLOSED, lock="locked", **_scene(event.scene))]
        return self._relock_failed(RelockFailed(f"lock_reads_{event.status.lock.value}"))

    def _relock_failed(self, event: RelockFailed) -> list[Effect]:
        self.relock_attempts += 1
        return [
            self._to(SessionState.ALARM, code=event.code, attempt=self.relock_attempts),
            self._alarm_entry(f"relock_failed:{event.code}"),
            NotifyOwner(NotificationKind.RELOCK_FAILED),
        ]

    def _retry_relock(self, event: RetryRelock) -> list[Effect]:
        return [
            self._to(SessionState.RELOCKING, cause="retry", attempt=event.attempt),
            SendLock(),
        ]

    def _reconcile(self, event: Reconciled) -> list[Effect]:
        status = event.status
        lock = status.lock.value if status is not None else "unreadable"
        if self.state in (SessionState.REQUESTED, SessionState.AWAITING_APPROVAL):
            self.reason = "gateway_restarted"
            return [self._to(SessionState.DENIED, code="gateway_restarted", lock=lock)]
        if status is not None and status.lock is LockState.LOCKED:
            return [self._to(SessionState.CLOSED, cause=RelockCause.RECONCILE.value, lock=lock)]
        return [
            self._to(SessionState.RELOCKING, cause=RelockCause.RECONCILE.value, lock=lock),
            SendLock(),
        ]


def _scene(scene: Mapping[str, AuditValue]) -> dict[str, AuditValue]:
    # Namespaced so a camera fact can never overwrite a session field of the entry.
    return {f"scene_{key}": value for key, value in scene.items()}


_S = SessionState
_HANDLERS: dict[tuple[SessionState, type], Callable[[AccessSession, Any], list[Effect]]] = {
    (_S.REQUESTED, Denied): AccessSession._deny,
    (_S.REQUESTED, Granted): AccessSession._grant,
    (_S.REQUESTED, ApprovalRequired): AccessSession._await_approval,
    (_S.AWAITING_APPROVAL, ApprovalGiven): AccessSession._approved,
    (_S.AWAITING_APPROVAL, ApprovalRefused): AccessSession._refused,
    (_S.AWAITING_APPROVAL, ApprovalTimedOut): AccessSession._approval_timeout,
    (_S.AWAITING_APPROVAL, ApprovalVoided): AccessSession._voided,
    (_S.UNLOCKING, Unlocked): AccessSession._unlocked,
    (_S.UNLOCKING, UnlockFailed): AccessSession._unlock_failed,
    (_S.UNLOCKING, UnlockOutcomeUnknown): AccessSession._unlock_unknown,
    (_S.UNLOCKING, DoorSensed): AccessSession._door_sensed_early,
    (_S.OPEN, DoorSensed): AccessSession._door_sensed,
    (_S.OPEN, RelockRequested): AccessSession._relock,
    (_S.OPEN, CameraStalled): AccessSession._camera_stalled,
    (_S.RELOCKING, Relocked): AccessSession._relocked,
    (_S.RELOCKING, RelockFailed): AccessSession._relock_failed,
    (_S.ALARM, RetryRelock): AccessSession._retry_relock,
}
for _state in (_S.REQUESTED, _S.AWAITING_APPROVAL, _S.GRANTED, _S.UNLOCKING, _S.OPEN):
    _HANDLERS[(_state, Reconciled)] = AccessSession._reconcile
for _state in (_S.RELOCKING, _S.ALARM):
    _HANDLERS[(_state, Reconciled)] = AccessSession._reconcile
