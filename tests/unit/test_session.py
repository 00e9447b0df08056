"""The access-session state machine: every transition, the audit-before-command order, and
that no path ever emits a second unlock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ble.driver import DoorState, LockState, LockStatus
from gateway.access.errors import AccessCode, Refusal
from gateway.access.session import (
    AccessSession,
    AppendAudit,
    ApprovalGiven,
    ApprovalRefused,
    ApprovalRequired,
    ApprovalTimedOut,
    ApprovalVoided,
    ArmApprovalTimer,
    ArmOpenTimer,
    CameraStalled,
    Denied,
    DoorSensed,
    Granted,
    MemoryUses,
    NotificationKind,
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
    SessionProtocolError,
    SessionState,
    Unlocked,
    UnlockFailed,
    UnlockOutcomeUnknown,
)

FACTS = SessionFacts(
    session="s1", door="front", jti="t1", subject="courier", purpose="delivery", open_s=30
)


def status(lock: LockState, door: DoorState = DoorState.CLOSED) -> LockStatus:
    return LockStatus(lock, door, 90, False, datetime(2026, 1, 1, tzinfo=UTC))


def kinds(effects: list[object]) -> list[str]:
    return [e.kind if isinstance(e, AppendAudit) else type(e).__name__ for e in effects]


def test_deny_is_one_audit_entry() -> None:
    s = AccessSession(FACTS)
    effects = s.handle(Denied("expired"))
    assert kinds(effects) == ["session.denied"]
    assert s.state is SessionState.DENIED
    assert s.finished
    assert s.reason == "expired"
    record = effects[0].record()  # type: ignore[union-attr]
    assert record["code"] == "expired"
    assert record["jti"] == "t1"


def test_grant_writes_granted_before_unlock() -> None:
    s = AccessSession(FACTS)
    effects = s.handle(Granted())
    assert kinds(effects) == ["session.granted", "session.unlocking", "SendUnlock"]
    assert s.state is SessionState.UNLOCKING


def test_emergency_grant_writes_alarm_before_unlock() -> None:
    s = AccessSession(FACTS)
    effects = s.handle(Granted(alarm=True, alarm_reason="emergency+camera_down"))
    names = kinds(effects)
    assert names.index("alarm.raised") < names.index("SendUnlock")
    assert names.index("session.granted") < names.index("SendUnlock")


def test_full_happy_path_done() -> None:
    s = AccessSession(FACTS)
    s.handle(Granted())
    effects = s.handle(Unlocked(status(LockState.UNLOCKED)))
    assert kinds(effects) == ["session.open", "ArmOpenTimer"]
    assert effects[1] == ArmOpenTimer(30)
    effects = s.handle(RelockRequested(RelockCause.DONE))
    assert kinds(effects) == ["session.relocking", "SendLock"]
    effects = s.handle(Relocked(status(LockState.LOCKED)))
    assert kinds(effects) == ["session.closed"]
    assert s.finished
    assert not s.holds_door
    assert s.history == (
        SessionState.REQUESTED,
        SessionState.GRANTED,
        SessionState.UNLOCKING,
        SessionState.OPEN,
        SessionState.RELOCKING,
        SessionState.CLOSED,
    )


def test_door_open_then_closed_relocks() -> None:
    s = AccessSession(FACTS)
    s.handle(Granted())
    s.handle(Unlocked(status(LockState.UNLOCKED)))
    assert s.handle(DoorSensed(DoorState.CLOSED)) == []  # closed without having opened
    assert s.handle(DoorSensed(DoorState.OPEN)) == []
    effects = s.handle(DoorSensed(DoorState.CLOSED))
    assert kinds(effects) == ["session.relocking", "SendLock"]
    assert effects[0].record()["cause"] == "door_closed"  # type: ignore[union-attr]


def test_a_door_left_open_past_the_ticket_is_told_and_relocked() -> None:
    s = AccessSession(FACTS)
    s.handle(Granted())
    s.handle(Unlocked(status(LockState.UNLOCKED)))
    s.handle(DoorSensed(DoorState.OPEN))
    effects = s.handle(RelockRequested(RelockCause.OPEN_TIMEOUT))
    assert kinds(effects) == ["session.relocking", "NotifyOwner", "SendLock"]
    record = effects[0].record()  # type: ignore[union-attr]
    assert (record["cause"], record["door_left_open"]) == ("open_timeout", True)
    assert effects[1] == NotifyOwner(
        NotificationKind.DOOR_LEFT_OPEN, "door still open after the ticket's 30 s"
    )


@pytest.mark.parametrize(
    "sensed",
    [
        [],  # never opened
        [DoorState.OPEN, DoorState.CLOSED],  # opened and closed while the bolt moved
    ],
)
def test_the_open_timer_on_a_closed_door_tells_nobody(sensed: list[DoorState]) -> None:
    s = AccessSession(FACTS)
    s.handle(Granted())
    for door in sensed:
        s.handle(DoorSensed(door))  # during the unlock
    s.handle(Unlocked(status(LockState.UNLOCKED)))
    effects = s.handle(RelockRequested(RelockCause.OPEN_TIMEOUT))
    assert kinds(effects) == ["session.relocking", "SendLock"]


def test_relock_verified_by_state_read_else_alarm_and_retry() -> None:
    s = AccessSession(FACTS)
    s.handle(Granted())
    s.handle(Unlocked(status(LockState.UNLOCKED)))
    s.handle(RelockRequested(RelockCause.OPEN_TIMEOUT))
    effects = s.handle(Relocked(status(LockState.UNLOCKED)))
    assert kinds(effects) == ["session.alarm", "alarm.raised", "NotifyOwner"]
    assert s.state is SessionState.ALARM
    assert s.holds_door
    assert kinds(s.handle(RetryRelock(1))) == ["session.relocking", "SendLock"]
    assert kinds(s.handle(RelockFailed("lock_timeout"))) == [
        "session.alarm",
        "alarm.raised",
        "NotifyOwner",
    ]
    s.handle(RetryRelock(2))
    assert kinds(s.handle(Relocked(status(LockState.LOCKED)))) == ["session.closed"]


def test_survey_approval_paths() -> None:
    s = AccessSession(FACTS)
    effects = s.handle(ApprovalRequired(300))
    assert ArmApprovalTimer(300) in effects
    assert s.state is SessionState.AWAITING_APPROVAL
    assert not s.holds_door
    assert kinds(s.handle(ApprovalGiven())) == [
        "session.granted",
        "session.unlocking",
        "SendUnlock",
    ]

    s = AccessSession(FACTS)
    s.handle(ApprovalRequired(300))
    s.handle(ApprovalRefused())
    assert s.state is SessionState.DENIED
    assert s.reason == "approval_denied"

    s = AccessSession(FACTS)
    s.handle(ApprovalRequired(300))
    s.handle(ApprovalTimedOut())
    assert s.state is SessionState.DENIED
    assert s.reason == "approval_denied"

    # Approved too late (issue 11, finding 6): denied, and the entry names the failed check.
    s = AccessSession(FACTS)
    s.handle(ApprovalRequired(300))
    (entry,) = s.handle(ApprovalVoided("revoked", "holder revoked"))
    assert isinstance(entry, AppendAudit)
    assert (entry.kind, entry.detail["code"], entry.detail["cause"]) == (
        "session.denied",
        "approval_voided",
        "revoked",
    )
    assert (s.state, s.reason) == (SessionState.DENIED, "approval_voided")
    assert s.handle(ApprovalVoided("expired")) == []  # late: the session is over
    assert s.handle(ApprovalGiven()) == []  # late approval after the timeout changes nothing


@pytest.mark.parametrize(
    ("reading", "state", "next_effects"),
    [
        (LockState.UNLOCKED, SessionState.OPEN, ["session.open", "ArmOpenTimer"]),
        (LockState.LOCKED, SessionState.FAILED, ["session.failed"]),
        (None, SessionState.RELOCKING, ["session.relocking", "SendLock"]),
        (LockState.JAMMED, SessionState.RELOCKING, ["session.relocking", "SendLock"]),
    ],
)
def test_unknown_unlock_outcome_decided_by_reading(
    reading: LockState | None, state: SessionState, next_effects: list[str]
) -> None:
    s = AccessSession(FACTS)
    s.handle(Granted())
    effects = s.handle(UnlockOutcomeUnknown(None if reading is None else status(reading)))
    assert kinds(effects) == next_effects
    assert s.state is state
    assert not any(isinstance(e, SendUnlock) for e in effects)


def test_unlock_failed() -> None:
    s = AccessSession(FACTS)
    s.handle(Granted())
    assert kinds(s.handle(UnlockFailed("lock_jammed"))) == ["session.failed"]
    assert s.finished


@pytest.mark.parametrize(
    ("state", "reading", "expected"),
    [
        (SessionState.REQUESTED, LockState.LOCKED, SessionState.DENIED),
        (SessionState.AWAITING_APPROVAL, None, SessionState.DENIED),
        (SessionState.OPEN, LockState.UNLOCKED, SessionState.RELOCKING),
        (SessionState.UNLOCKING, None, SessionState.RELOCKING),
        (SessionState.OPEN, LockState.LOCKED, SessionState.CLOSED),
        (SessionState.ALARM, LockState.UNLOCKED, SessionState.RELOCKING),
        (SessionState.GRANTED, LockState.LOCKED, SessionState.CLOSED),
    ],
)
def test_reconcile(state: SessionState, reading: LockState | None, expected: SessionState) -> None:
    s = AccessSession.restore(FACTS, state)
    effects = s.handle(Reconciled(None if reading is None else status(reading)))
    assert s.state is expected
    assert isinstance(effects[0], AppendAudit)
    assert (SendLock() in effects) == (expected is SessionState.RELOCKING)


def test_invalid_events_raise() -> None:
    s = AccessSession(FACTS)
    with pytest.raises(SessionProtocolError):
        s.handle(Unlocked(status(LockState.UNLOCKED)))
    s.handle(Granted())
    with pytest.raises(SessionProtocolError):
        s.handle(Granted())


EVENTS = st.sampled_from(
    [
        Denied("x"),
        Granted(),
        Granted(alarm=True),
        ApprovalRequired(1),
        ApprovalGiven(),
        ApprovalRefused(),
        ApprovalTimedOut(),
        ApprovalVoided("revoked"),
        Unlocked(status(LockState.UNLOCKED)),
        UnlockFailed("e"),
        UnlockOutcomeUnknown(None),
        UnlockOutcomeUnknown(status(LockState.UNLOCKED)),
        DoorSensed(DoorState.OPEN),
        DoorSensed(DoorState.CLOSED),
        RelockRequested(RelockCause.DONE),
        Relocked(status(LockState.LOCKED)),
        Relocked(status(LockState.UNLOCKED)),
        RelockFailed("e"),
        RetryRelock(1),
        Reconciled(None),
        CameraStalled(),
    ]
)


@settings(max_examples=400)
@given(st.lists(EVENTS, max_size=25))
def test_any_event_sequence_unlocks_at_most_once_and_audits_first(events: list[object]) -> None:
    s = AccessSession(FACTS)
    unlocks = 0
    audited: set[SessionState] = set()
    for event in events:
        try:
            effects = s.handle(event)  # type: ignore[arg-type]
        except SessionProtocolError:
            continue
        for effect in effects:
            if isinstance(effect, AppendAudit):
                audited.add(effect.state)
            if isinstance(effect, SendUnlock):
                unlocks += 1
                assert SessionState.GRANTED in audited
        # Every state the session is in was announced by an audit entry first.
        assert s.state is SessionState.REQUESTED or s.state in audited
    assert unlocks <= 1


# -- the runner's decisions, now the machine's ---------------------------------------------------

EMERGENCY = SessionFacts(
    session="s2", door="front", jti="t2", subject="fire", purpose="emergency", open_s=30
)


def opened(facts: SessionFacts = FACTS) -> AccessSession:
    s = AccessSession(facts, use=("k-owner", facts.jti, 1))
    s.handle(Granted())
    s.handle(Unlocked(status(LockState.UNLOCKED)))
    return s


def test_a_camera_stall_relocks_an_open_door_and_tells_the_owner() -> None:
    s = opened()
    effects = s.handle(CameraStalled())
    assert kinds(effects) == [
        "session.relocking",
        "camera.stalled",
        "alarm.raised",
        "NotifyOwner",
        "SendLock",
    ]
    assert NotifyOwner(NotificationKind.CAMERA_STALLED) in effects
    assert effects[0].record()["cause"] == "camera_stalled"  # type: ignore[union-attr]


@pytest.mark.parametrize("before", [[], [ApprovalRequired(60)], [Denied("expired")]])
def test_a_camera_stall_with_no_open_door_does_nothing(before: list[object]) -> None:
    s = AccessSession(FACTS)
    for event in before:
        s.handle(event)  # type: ignore[arg-type]
    state = s.state
    assert not s.opening_or_open
    assert s.handle(CameraStalled()) == []
    assert s.state is state


def test_a_stall_counts_a_session_mid_unlock_and_open_but_not_after() -> None:
    s = AccessSession(FACTS)
    s.handle(Granted())
    assert s.opening_or_open  # the runner delivers the stall once the unlock is done
    s.handle(Unlocked(status(LockState.UNLOCKED)))
    assert s.opening_or_open
    s.handle(RelockRequested(RelockCause.DONE))
    assert not s.opening_or_open
    assert s.handle(CameraStalled()) == []  # relocking already


def test_the_use_is_counted_by_the_first_write_only() -> None:
    s = AccessSession(FACTS, use=("k-owner", "t1", 3))
    assert s.use_to_count == ("k-owner", "t1", 3)
    assert s.recorded(True)
    assert s.use_to_count is None
    assert s.aborted is None


def test_a_use_refused_at_the_write_aborts_as_used_up() -> None:
    s = AccessSession(FACTS, use=("k-owner", "t1", 1))
    s.handle(Granted())
    assert not s.recorded(False)
    assert s.aborted is AccessCode.USES_EXHAUSTED
    assert s.ended
    assert s.handle(Unlocked(status(LockState.UNLOCKED))) == []  # an aborted session is done
    assert (s.shown_state, s.shown_reason) == ("denied", "uses_exhausted")


def test_a_failed_write_before_the_door_moved_fails_closed() -> None:
    s = AccessSession(FACTS, use=("k-owner", "t1", 1))
    s.handle(Granted())
    assert not s.record_failed(MemoryUses())
    assert s.aborted is AccessCode.STORAGE_UNAVAILABLE
    assert s.refusal() == Refusal(
        AccessCode.STORAGE_UNAVAILABLE, "the audit log could not be written; nothing was unlocked"
    )


def test_a_failed_write_after_the_door_moved_keeps_relocking() -> None:
    s = opened()
    s.recorded(True)
    s.handle(RelockRequested(RelockCause.DONE))
    assert s.door_moved
    assert s.record_failed(MemoryUses())
    assert s.aborted is None


def test_an_emergency_goes_on_without_the_store_but_only_once() -> None:
    memory = MemoryUses()
    first = AccessSession(EMERGENCY, use=("k-owner", "t2", 1))
    first.handle(Granted(alarm=True))
    assert first.emergency
    assert first.record_failed(memory)
    assert first.use_to_count is None
    assert first.record_failed(memory)  # later writes of the same session go on too
    second = AccessSession(EMERGENCY, use=("k-owner", "t2", 1))
    second.handle(Granted(alarm=True))
    assert not second.record_failed(memory)
    assert second.aborted is AccessCode.USES_EXHAUSTED


def test_another_issuers_emergency_with_the_same_id_is_its_own_use() -> None:
    # Issue 11, finding 9, in the outage path: uses are keyed on the issuer and the id.
    memory = MemoryUses()
    owners = AccessSession(EMERGENCY, use=("k-owner", "t2", 1))
    owners.handle(Granted(alarm=True))
    assert owners.record_failed(memory)
    company = AccessSession(EMERGENCY, use=("k-company", "t2", 1))
    company.handle(Granted(alarm=True))
    assert company.record_failed(memory)
    assert company.aborted is None


def test_refusal_after_a_request() -> None:
    assert opened().refusal() is None
    waiting = AccessSession(FACTS)
    waiting.handle(ApprovalRequired(60))
    assert waiting.refusal() is None
    denied = AccessSession(FACTS)
    denied.handle(Denied("expired"))
    assert denied.refusal() == Refusal(AccessCode.EXPIRED, "denied")
    odd = AccessSession(FACTS)
    odd.handle(Denied("no_such_code"))
    assert odd.refusal() == Refusal(AccessCode.DENIED, "denied")
    failed = AccessSession(FACTS)
    failed.handle(Granted())
    failed.handle(UnlockFailed("lock_busy"))
    assert failed.refusal() == Refusal(
        AccessCode.LOCK_UNAVAILABLE, "the lock did not unlock (lock_busy)"
    )
    # Open once, then in alarm: the request succeeded; the alarm is the owner's matter.
    alarm = opened()
    alarm.handle(RelockRequested(RelockCause.DONE))
    alarm.handle(RelockFailed("jammed"))
    assert alarm.state is SessionState.ALARM
    assert alarm.refusal() is None


def test_owner_notifications_carry_their_kind() -> None:
    s = AccessSession(FACTS)
    assert NotifyOwner(NotificationKind.APPROVAL_NEEDED) in s.handle(ApprovalRequired(60))
    e = AccessSession(EMERGENCY)
    told = [x for x in e.handle(Granted(alarm=True, alarm_reason="emergency+camera_down"))]
    notice = next(x for x in told if isinstance(x, NotifyOwner))
    assert (notice.kind, notice.text) == (NotificationKind.EMERGENCY_ENTRY, "emergency+camera_down")
    r = opened()
    r.handle(RelockRequested(RelockCause.DONE))
    failed = r.handle(RelockFailed("jammed"))
    assert NotifyOwner(NotificationKind.RELOCK_FAILED) in failed
    assert NotifyOwner(NotificationKind.RELOCK_FAILED).text == "relock_failed"
