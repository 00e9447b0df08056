"""The observer seam: what the access layer reports as it works, for whoever listens.

The service and its runners call one :class:`AccessObserver` with frozen events: a grant
committed (the unlock leaves now), a refusal, a relock, an alarm, and every
:class:`OwnerNotification` (an approval to give, an emergency entry, a relock that failed, a
frozen camera). Metrics, the owner app's notifier and MQTT plug in here; the default,
:class:`LoggingObserver`, writes the owner's notifications to the log and nothing else.

An observer is called on the access path: it must return at once (hand slow work to a task
of its own) and must not raise; an exception it raises is logged and otherwise ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from gateway.access.errors import AccessCode
from gateway.access.session import NotificationKind

log = logging.getLogger("threshold.access")


@dataclass(frozen=True, slots=True)
class GrantCommitted:
    """The grant is durable and the unlock is handed to the lock now.

    ``since_arrival_s``: from the request reaching the gateway (``time.perf_counter``) to
    this moment, the gateway's own overhead; None for a session without an arrival time.
    """

    session: str
    door: str
    purpose: str
    #: Who came: the ticket's subject, as the owner's log names them.
    subject: str
    since_arrival_s: float | None


@dataclass(frozen=True, slots=True)
class RequestRefused:
    """A request answered with no; ``session`` is None when nothing verified (not audited)."""

    code: AccessCode
    door: str
    session: str | None


@dataclass(frozen=True, slots=True)
class DoorRelocked:
    """A session ended with its door verified locked."""

    session: str
    door: str


@dataclass(frozen=True, slots=True)
class AlarmRaised:
    """An ``alarm.raised`` entry was recorded (or, the store down, should have been)."""

    session: str
    door: str
    reason: str


@dataclass(frozen=True, slots=True)
class OwnerNotification:
    """Something needs the owner: what kind, where, and a line of text for a person."""

    kind: NotificationKind
    door: str
    session: str
    purpose: str
    #: The ticket's subject (who is at the door).
    subject: str
    text: str


AccessEvent = GrantCommitted | RequestRefused | DoorRelocked | AlarmRaised | OwnerNotification


class AccessObserver(Protocol):
    def observe(self, event: AccessEvent) -> None:
        """Take note of ``event``; return at once, never raise."""


class LoggingObserver:
    """The default observer: one warning line per owner notification (nothing else)."""

    def observe(self, event: AccessEvent) -> None:
        if isinstance(event, OwnerNotification):
            # A notification about the gateway itself (its clock) has no session or door.
            where = f" (session {event.session}, door {event.door})" if event.session else ""
            log.warning("owner attention: %s%s", event.text, where)


class ObserverSet:
    """Several observers behind the one seam (metrics, the log, notifiers), in order; one
    that raises is logged and the others still hear the event."""

    def __init__(self, *observers: AccessObserver) -> None:
        self._observers = observers

    def observe(self, event: AccessEvent) -> None:
        for observer in self._observers:
            try:
                observer.observe(event)
            except Exception:
                log.exception("access observer %s failed", type(observer).__name__)
