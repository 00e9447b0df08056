"""The access-session state machine: every transition, the audit-before-command order, and
that no path ever emits a second unlock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ble.driver import DoorState, LockState, LockStatus
from gateway.access.session import (
    AccessSession,
    AppendAudit,
    ApprovalGiven,
    ApprovalRefused,
    ApprovalRequired,
    ApprovalTimedOut,
    ArmApprovalTimer,
    ArmOpenTimer,
    Denied,
    DoorSensed,
    Granted,
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
