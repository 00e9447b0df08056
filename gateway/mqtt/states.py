"""What the gateway's facts become on the wire to Home Assistant (pure).

The payloads match the discovery document (:mod:`gateway.mqtt.discovery`): a lock's state is
one of the MQTT lock platform's state strings, binary sensors are ``ON``/``OFF``, a visit is
an ``event`` entity's JSON (``event_type`` plus attributes). Nothing here carries a ticket, a
key or a session's secret: who came is the ticket's subject, as the owner's own log shows it.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from ble.driver import DoorState, LockState, LockStatus
from gateway.access.observer import (
    AccessEvent,
    AlarmRaised,
    GrantCommitted,
    OwnerNotification,
    RequestRefused,
)
from gateway.access.session import NotificationKind


class LockPayload(enum.StrEnum):
    """The MQTT lock platform's states (its ``state_*`` defaults)."""

    LOCKED = "LOCKED"
    LOCKING = "LOCKING"
    UNLOCKED = "UNLOCKED"
    UNLOCKING = "UNLOCKING"
    JAMMED = "JAMMED"
    OPEN = "OPEN"


class Command(enum.StrEnum):
    """What Home Assistant may send to a door's command topic (its ``payload_*`` defaults)."""

    LOCK = "LOCK"
    UNLOCK = "UNLOCK"


#: A visit's ``event_type`` by the ticket's purpose (the issue's names: a delivery is a
#: courier's entry).
ENTRY_EVENTS = {
    "delivery": "courier_entry",
    "service": "service_entry",
    "guest": "guest_entry",
    "survey": "survey_entry",
    "emergency": "emergency_entry",
}
DENIED = "denied"
AWAITING_APPROVAL = "awaiting_approval"
VISIT_EVENT_TYPES = (*ENTRY_EVENTS.values(), DENIED, AWAITING_APPROVAL)
ATTENTION_EVENT_TYPES = tuple(kind.value for kind in NotificationKind)

_LOCK_STATES = {
    LockState.LOCKED: LockPayload.LOCKED,
    LockState.LOCKING: LockPayload.LOCKING,
    LockState.UNLOCKED: LockPayload.UNLOCKED,
    LockState.UNLOCKING: LockPayload.UNLOCKING,
    LockState.JAMMED: LockPayload.JAMMED,
}


def lock_payload(status: LockStatus) -> LockPayload | None:
    """The lock entity's state; OPEN whenever the door sensor says the door is open (the
    issue's "open as the door sensor says"); None when the lock does not know (nothing is
    published rather than a wrong state)."""
    if status.door is DoorState.OPEN:
        return LockPayload.OPEN
    return _LOCK_STATES.get(status.lock)


def contact_payload(status: LockStatus) -> str | None:
    """The door ``binary_sensor`` (device class ``door``: ON is open)."""
    if status.door is DoorState.UNKNOWN:
        return None
    return "ON" if status.door is DoorState.OPEN else "OFF"


def on_off(value: bool) -> str:
    return "ON" if value else "OFF"


@dataclass(frozen=True, slots=True)
class Publication:
    """One message to send: ``retain`` for states a new subscriber must see at once."""

    topic: str
    payload: bytes
    retain: bool
    #: For an owner notification: when it was handed to the bridge (``time.perf_counter``),
    #: so its delivery to the broker is timed.
    queued_at: float | None = None


def visit_event(event: AccessEvent) -> tuple[str, dict[str, str]] | None:
    """The door and the ``event`` entity's payload for an access event, or None when the
    event is not a visit (relocks, alarms, notifications other than an approval to give)."""
    if isinstance(event, GrantCommitted):
        kind = ENTRY_EVENTS.get(event.purpose)
        if kind is None:
            return None
        return event.door, {
            "event_type": kind,
            "who": event.subject,
            "purpose": event.purpose,
            "session": event.session,
        }
    if isinstance(event, RequestRefused):
        payload = {"event_type": DENIED, "reason": event.code.value}
        if event.session is not None:
            # Only a holder who proved possession is named (an unproven token names nobody).
            payload["session"] = event.session
        return event.door, payload
    if isinstance(event, OwnerNotification) and event.kind is NotificationKind.APPROVAL_NEEDED:
        return event.door, {
            "event_type": AWAITING_APPROVAL,
            "who": event.subject,
            "purpose": event.purpose,
            "session": event.session,
        }
    return None


def attention_event(event: OwnerNotification) -> dict[str, str]:
    """The owner-attention ``event`` entity's payload: what an automation turns into a phone
    notification (the snapshot is on the door's image entity)."""
    return {
        "event_type": event.kind.value,
        "door": event.door,
        "purpose": event.purpose,
        "who": event.subject,
        "session": event.session,
        "text": event.text,
    }


def alarm_attributes(event: AlarmRaised) -> dict[str, str]:
    return {"reason": event.reason, "door": event.door, "session": event.session}


def encode(payload: dict[str, str]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def parse_command(payload: bytes) -> Command | None:
    """A command topic's payload, or None for anything else (ignored, never guessed)."""
    try:
        return Command(payload.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
