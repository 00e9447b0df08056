"""Events the sans-IO Nuki exchanges (:mod:`ble.nuki.pairing`, :mod:`ble.nuki.action`) emit.

:class:`SendFrame` is the vendor-neutral one of :mod:`ble.exchange` (``is_action`` marks
the Lock Action frame, the point of no return); the link (:mod:`ble.link`) writes it to the
exchange's characteristic, and the driver reacts to the others. Nothing here touches a
socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ble.exchange import SendFrame
from ble.nuki.config import Config
from ble.nuki.messages import ErrorReport, KeyturnerStates


@dataclass(frozen=True, slots=True)
class LockReportedError:
    """The lock answered with an Error Report (§7)."""

    report: ErrorReport


@dataclass(frozen=True, slots=True)
class StatesReceived:
    states: KeyturnerStates


@dataclass(frozen=True, slots=True)
class ConfigReceived:
    config: Config


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


Event = (
    SendFrame
    | LockReportedError
    | StatesReceived
    | ConfigReceived
    | ActionAccepted
    | ActionCompleted
    | Paired
)
