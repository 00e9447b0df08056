"""Events the sans-IO Nuki exchanges (:mod:`ble.nuki.pairing`, :mod:`ble.nuki.action`) emit.

The I/O shell writes every :class:`SendFrame` to the characteristic named by the exchange
and reacts to the others; nothing here touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ble.nuki.messages import ErrorReport, KeyturnerStates


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Write ``data`` to the lock. ``is_action`` marks the frame after which an action's
    outcome is unknown if the link drops: the point of no return."""

    data: bytes
    is_action: bool = False


@dataclass(frozen=True, slots=True)
class LockReportedError:
    """The lock answered with an Error Report (§7)."""

    report: ErrorReport


@dataclass(frozen=True, slots=True)
class StatesReceived:
    states: KeyturnerStates


@dataclass(frozen=True, slots=True)
class ActionAccepted:
    """Status ACCEPTED: the lock has started the motor."""


@dataclass(frozen=True, slots=True)
class ActionCompleted:
    """Status COMPLETE after a lock action; ``states`` is the last Keyturner States seen."""

    states: KeyturnerStates | None


@dataclass(frozen=True, slots=True)
class PairingResult:
    """What a successful pairing leaves behind: enough to talk to the lock forever after."""

    auth_id: int
    shared_key: bytes = field(repr=False)
    lock_uuid: bytes
    app_id: int


@dataclass(frozen=True, slots=True)
class Paired:
    result: PairingResult


Event = SendFrame | LockReportedError | StatesReceived | ActionAccepted | ActionCompleted | Paired
