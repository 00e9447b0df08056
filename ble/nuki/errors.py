"""Nuki-specific lock errors: refinements of :mod:`ble.errors` with their own stable codes,
and the mapping from the lock's Error Reports (Nuki BLE API §7) to typed errors."""

from __future__ import annotations

from ble.errors import (
    LockBusy,
    LockError,
    LockJammed,
    LockNotAuthorized,
    LockProtocolError,
)
from ble.nuki.messages import ErrorCode, ErrorReport


class NukiPairingRefused(LockNotAuthorized):
    """The lock refused to pair: not in pairing mode, or its user table is full."""

    code = "lock_pairing_refused"


class NukiBatteryTooLow(LockError):
    """The lock's batteries cannot drive the motor any more."""

    code = "lock_battery_too_low"


def error_for_report(report: ErrorReport) -> LockError:
    """The typed error, with a message a homeowner can act on, for an Error Report."""
    known = report.known
    name = known.name if known else f"0x{report.error:02X}"
    if known is ErrorCode.P_ERROR_NOT_PAIRING:
        return NukiPairingRefused(
            "the lock is not in pairing mode: hold its button for 5 seconds until the ring "
            "lights up, then pair again"
        )
    if known is ErrorCode.P_ERROR_MAX_USER:
        return NukiPairingRefused(
            "the lock refused to pair: its list of authorized devices is full; remove an "
            "unused one in the Nuki app"
        )
    if known in (
        ErrorCode.K_ERROR_NOT_AUTHORIZED,
        ErrorCode.K_ERROR_INVALID_AUTH_ID,
        ErrorCode.P_ERROR_BAD_AUTHENTICATOR,
    ):
        return LockNotAuthorized(
            "the lock does not accept this gateway (its authorization was removed or the "
            "lock was reset); pair it again with 'threshold lock pair'"
        )
    if known is ErrorCode.K_ERROR_MOTOR_BLOCKED:
        return LockJammed(
            "the lock's motor is blocked: the bolt is jammed; check that the door is fully "
            "closed and nothing obstructs the bolt, then lock it by hand"
        )
    if known is ErrorCode.K_ERROR_BUSY:
        return LockBusy("the lock is busy with another action; try again in a few seconds")
    if known in (
        ErrorCode.K_ERROR_MOTOR_LOW_VOLTAGE,
        ErrorCode.K_ERROR_VOLTAGE_TOO_LOW,
        ErrorCode.K_ERROR_MOTOR_POWER_FAILURE,
    ):
        return NukiBatteryTooLow("the lock's batteries are too low to turn the motor; replace them")
    return LockProtocolError(f"the lock reported error {name}; try again")
