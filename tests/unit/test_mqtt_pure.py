"""The pure parts of the Home Assistant bridge: topics, states, visit events, commands and
the discovery document (gateway/mqtt/{topics,states,discovery}.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ble.driver import DoorState, LockState, LockStatus
from gateway.access.errors import AccessCode
from gateway.access.observer import (
    AlarmRaised,
    DoorRelocked,
    GrantCommitted,
    OwnerNotification,
    RequestRefused,
)
from gateway.access.session import NotificationKind
from gateway.mqtt.discovery import discovery_document
from gateway.mqtt.states import (
    Command,
    LockPayload,
    contact_payload,
    lock_payload,
    parse_command,
    visit_event,
)
from gateway.mqtt.topics import Topics
from gateway.trust.ticket import Purpose

TOPICS = Topics.of("threshold", "homeassistant", "gw-1")


def status(lock: LockState, door: DoorState = DoorState.CLOSED) -> LockStatus:
    return LockStatus(lock, door, 80, False, datetime.now(UTC))


def test_topics() -> None:
    assert TOPICS.discovery == "homeassistant/device/threshold_gw-1/config"
    assert TOPICS.ha_status == "homeassistant/status"
    assert TOPICS.door("front").command == "threshold/gw-1/door/front/lock/set"
    assert TOPICS.door_of_command("threshold/gw-1/door/front/lock/set") == "front"
    for other in (
        "threshold/gw-2/door/front/lock/set",
        "threshold/gw-1/door//lock/set",
        "threshold/gw-1/door/a/b/lock/set",
        "threshold/gw-1/door/front/lock",
        "homeassistant/status",
    ):
        assert TOPICS.door_of_command(other) is None, other


@pytest.mark.parametrize(
    ("lock", "door", "expected"),
    [
        (LockState.LOCKED, DoorState.CLOSED, LockPayload.LOCKED),
        (LockState.UNLOCKING, DoorState.CLOSED, LockPayload.UNLOCKING),
        (LockState.UNLOCKED, DoorState.CLOSED, LockPayload.UNLOCKED),
        (LockState.LOCKING, DoorState.UNKNOWN, LockPayload.LOCKING),
        (LockState.JAMMED, DoorState.CLOSED, LockPayload.JAMMED),
        # "open as the door sensor says", whatever the bolt reports
        (LockState.UNLOCKED, DoorState.OPEN, LockPayload.OPEN),
        (LockState.UNKNOWN, DoorState.CLOSED, None),
    ],
)
def test_lock_payload(lock: LockState, door: DoorState, expected: LockPayload | None) -> None:
    assert lock_payload(status(lock, door)) == expected


def test_contact_payload() -> None:
    assert contact_payload(status(LockState.LOCKED, DoorState.OPEN)) == "ON"
    assert contact_payload(status(LockState.LOCKED, DoorState.CLOSED)) == "OFF"
    assert contact_payload(status(LockState.LOCKED, DoorState.UNKNOWN)) is None


def test_every_purpose_has_a_visit_event() -> None:
    kinds = set()
    for purpose in Purpose:
        visit = visit_event(GrantCommitted("s-1", "front", purpose.value, "who", None))
        assert visit is not None, purpose
        kinds.add(visit[1]["event_type"])
    assert kinds == {
        "courier_entry",
        "service_entry",
        "guest_entry",
        "survey_entry",
        "emergency_entry",
    }


def test_visit_events() -> None:
    grant = visit_event(GrantCommitted("s-1", "front", "delivery", "courier-3", 0.01))
    expected = {"event_type": "courier_entry", "who": "courier-3", "purpose": "delivery"}
    assert grant == ("front", {**expected, "session": "s-1"})
    unproven = visit_event(RequestRefused(AccessCode.BAD_SIGNATURE, "front", None))
    assert unproven == ("front", {"event_type": "denied", "reason": "bad_signature"})
    waiting = visit_event(
        OwnerNotification(
            NotificationKind.APPROVAL_NEEDED, "back", "s-2", "survey", "surveyor", "approve?"
        )
    )
    assert waiting is not None
    assert waiting[1]["event_type"] == "awaiting_approval"
    assert visit_event(DoorRelocked("s-1", "front")) is None
    assert visit_event(AlarmRaised("s-1", "front", "door_left_open")) is None
    emergency = OwnerNotification(
        NotificationKind.EMERGENCY_ENTRY, "front", "s-3", "emergency", "ems", "opened"
    )
    assert visit_event(emergency) is None  # the grant itself is the visit


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"LOCK", Command.LOCK),
        (b"UNLOCK", Command.UNLOCK),
        (b" UNLOCK\n", Command.UNLOCK),
        (b"OPEN", None),
        (b"unlock", None),
        (b"\xff", None),
        (b"", None),
    ],
)
def test_parse_command(payload: bytes, expected: Command | None) -> None:
    assert parse_command(payload) == expected


def test_discovery_document() -> None:
    with_camera = discovery_document(TOPICS, "gw-1", ("front", "back"), version="1", camera=True)
    cmps = with_camera["cmps"]
    assert {c["p"] for c in cmps.values()} == {"lock", "binary_sensor", "sensor", "event", "image"}
    assert cmps["back_lock"]["command_topic"] == "threshold/gw-1/door/back/lock/set"
    assert "payload_open" not in cmps["front_lock"]  # never unlatched from Home Assistant
    assert cmps["camera"]["device_class"] == "connectivity"
    without = discovery_document(TOPICS, "gw-1", ("front",), version="1", camera=False)
    assert "camera" not in without["cmps"]
    assert "front_snapshot" not in without["cmps"]
    assert without["dev"]["identifiers"] == ["threshold_gw-1"]
