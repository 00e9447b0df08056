"""Nuki BLE payloads: one frozen dataclass per message, each with ``encode``/``decode``.

Implements the payload layouts of the Nuki Smart Lock Bluetooth API (v2.x), §6 "Commands":
Request Data (0x0001), Public Key (0x0003), Challenge (0x0004), Authorization Authenticator
(0x0005), Authorization Data (0x0006), Authorization-ID (0x0007), Keyturner States
(0x000C), Lock Action (0x000D), Status (0x000E), Error Report (0x0012) and
Authorization-ID Confirmation (0x001E); §7 "Error codes" and §8 "Status codes". Request
Config (0x0014) and Config (0x0015) are in :mod:`ble.nuki.config`.

Multi-byte integers are little-endian. Decoders raise only
:class:`ble.nuki.frames.NukiProtocolError`.

Longer than most modules (about 530 lines) on purpose: it is the one table of the protocol's
payloads, each a few lines, so a reader checks every layout against the spec in one place.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from ble.nuki.config import Config, RequestConfig
from ble.nuki.frames import NONCE_32, Command, NukiProtocolError

AUTHENTICATOR_BYTES = 32
NAME_BYTES = 32
UUID_BYTES = 16


def _expect(payload: bytes, size: int, what: str) -> None:
    if len(payload) != size:
        raise NukiProtocolError(
            "bad_length", f"{what} payload is {len(payload)} bytes, expected {size}"
        )


class NukiState(enum.IntEnum):
    """Keyturner States, byte 0: the lock's operating mode."""

    UNINITIALIZED = 0x00
    PAIRING_MODE = 0x01
    DOOR_MODE = 0x02
    MAINTENANCE_MODE = 0x04


class NukiLockState(enum.IntEnum):
    """Keyturner States, byte 1. 0xFE is "motor blocked": the bolt is jammed."""

    UNCALIBRATED = 0x00
    LOCKED = 0x01
    UNLOCKING = 0x02
    UNLOCKED = 0x03
    LOCKING = 0x04
    UNLATCHED = 0x05
    UNLOCKED_LOCK_N_GO = 0x06
    UNLATCHING = 0x07
    CALIBRATION = 0xFC
    BOOT_RUN = 0xFD
    MOTOR_BLOCKED = 0xFE
    UNDEFINED = 0xFF


class Trigger(enum.IntEnum):
    """Keyturner States, byte 2: what caused the last state change."""

    SYSTEM = 0x00
    MANUAL = 0x01
    BUTTON = 0x02
    AUTOMATIC = 0x03
    AUTO_LOCK = 0x06


class DoorSensorState(enum.IntEnum):
    """Keyturner States, byte 18."""

    UNAVAILABLE = 0x00
    DEACTIVATED = 0x01
    DOOR_CLOSED = 0x02
    DOOR_OPENED = 0x03
    DOOR_STATE_UNKNOWN = 0x04
    CALIBRATING = 0x05
    UNCALIBRATED = 0x10
    TAMPERED = 0xF0
    UNKNOWN = 0xFF


class LockAction(enum.IntEnum):
    """Lock Action byte 0 (the subset the gateway sends)."""

    UNLOCK = 0x01
    LOCK = 0x02
    UNLATCH = 0x03


class StatusCode(enum.IntEnum):
    """§8 "Status codes"."""

    COMPLETE = 0x00
    ACCEPTED = 0x01


class ErrorCode(enum.IntEnum):
    """§7 "Error codes" (general, pairing ``P_``, keyturner ``K_``) that the driver maps."""

    ERROR_BAD_CRC = 0xFD
    ERROR_BAD_LENGTH = 0xFE
    ERROR_UNKNOWN = 0xFF
    P_ERROR_NOT_PAIRING = 0x10
    P_ERROR_BAD_AUTHENTICATOR = 0x11
    P_ERROR_BAD_PARAMETER = 0x12
    P_ERROR_MAX_USER = 0x13
    K_ERROR_NOT_AUTHORIZED = 0x20
    K_ERROR_BAD_PIN = 0x21
    K_ERROR_BAD_NONCE = 0x22
    K_ERROR_BAD_PARAMETER = 0x23
    K_ERROR_INVALID_AUTH_ID = 0x24
    K_ERROR_DISABLED = 0x25
    K_ERROR_REMOTE_NOT_ALLOWED = 0x26
    K_ERROR_TIME_NOT_ALLOWED = 0x27
    K_ERROR_AUTO_UNLOCK_TOO_RECENT = 0x40
    K_ERROR_POSITION_UNKNOWN = 0x41
    K_ERROR_MOTOR_BLOCKED = 0x42
    K_ERROR_CLUTCH_FAILURE = 0x43
    K_ERROR_MOTOR_TIMEOUT = 0x44
    K_ERROR_BUSY = 0x45
    K_ERROR_CANCELED = 0x46
    K_ERROR_NOT_CALIBRATED = 0x47
    K_ERROR_MOTOR_POSITION_LIMIT = 0x48
    K_ERROR_MOTOR_LOW_VOLTAGE = 0x49
    K_ERROR_MOTOR_POWER_FAILURE = 0x4A
    K_ERROR_CLUTCH_POWER_FAILURE = 0x4B
    K_ERROR_VOLTAGE_TOO_LOW = 0x4C
    K_ERROR_FIRMWARE_UPDATE_NEEDED = 0x4D


@dataclass(frozen=True, slots=True)
class RequestData:
    """0x0001: ask the lock to send the message ``requested``."""

    COMMAND: ClassVar[Command] = Command.REQUEST_DATA
    requested: int

    def encode(self) -> bytes:
        return struct.pack("<H", self.requested)

    @classmethod
    def decode(cls, payload: bytes) -> RequestData:
        # Some requests carry extra data after the command id (not used here): accept it.
        if len(payload) < 2:
            raise NukiProtocolError("bad_length", "Request Data payload is 2 bytes or more")
        (requested,) = struct.unpack_from("<H", payload)
        return cls(int(requested))


@dataclass(frozen=True, slots=True)
class PublicKey:
    """0x0003: a party's X25519 public key."""

    COMMAND: ClassVar[Command] = Command.PUBLIC_KEY
    key: bytes

    def encode(self) -> bytes:
        return self.key

    @classmethod
    def decode(cls, payload: bytes) -> PublicKey:
        _expect(payload, 32, "Public Key")
        return cls(payload)


@dataclass(frozen=True, slots=True)
class Challenge:
    """0x0004: a 32-byte nonce the next command must include (anti-replay)."""

    COMMAND: ClassVar[Command] = Command.CHALLENGE
    nonce: bytes

    def encode(self) -> bytes:
        return self.nonce

    @classmethod
    def decode(cls, payload: bytes) -> Challenge:
        _expect(payload, NONCE_32, "Challenge")
        return cls(payload)


@dataclass(frozen=True, slots=True)
class AuthorizationAuthenticator:
    """0x0005: HMAC(shared key, client public key | lock public key | challenge)."""

    COMMAND: ClassVar[Command] = Command.AUTHORIZATION_AUTHENTICATOR
    authenticator: bytes

    def encode(self) -> bytes:
        return self.authenticator

    @classmethod
    def decode(cls, payload: bytes) -> AuthorizationAuthenticator:
        _expect(payload, AUTHENTICATOR_BYTES, "Authorization Authenticator")
        return cls(payload)


class IdType(enum.IntEnum):
    APP = 0
    BRIDGE = 1
    FOB = 2
    KEYPAD = 3


def encode_name(name: str) -> bytes:
    raw = name.encode("utf-8")[:NAME_BYTES]
    return raw.ljust(NAME_BYTES, b"\x00")


def decode_name(raw: bytes) -> str:
    return raw.rstrip(b"\x00").decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class AuthorizationData:
    """0x0006: who is asking to be authorized. The authenticator covers
    ``id_type | app_id | name | nonce | lock challenge``."""

    COMMAND: ClassVar[Command] = Command.AUTHORIZATION_DATA
    authenticator: bytes
    id_type: IdType
    app_id: int
    name: bytes  # 32 bytes, zero-padded
    nonce: bytes

    SIZE: ClassVar[int] = AUTHENTICATOR_BYTES + 1 + 4 + NAME_BYTES + NONCE_32

    def signed_part(self) -> bytes:
        return struct.pack("<BI", self.id_type, self.app_id) + self.name + self.nonce

    def encode(self) -> bytes:
        return self.authenticator + self.signed_part()

    @classmethod
    def decode(cls, payload: bytes) -> AuthorizationData:
        _expect(payload, cls.SIZE, "Authorization Data")
        id_type, app_id = struct.unpack_from("<BI", payload, AUTHENTICATOR_BYTES)
        try:
            kind = IdType(id_type)
        except ValueError:
            raise NukiProtocolError("bad_parameter", f"unknown id type {id_type}") from None
        name_at = AUTHENTICATOR_BYTES + 5
        return cls(
            authenticator=payload[:AUTHENTICATOR_BYTES],
            id_type=kind,
            app_id=int(app_id),
            name=payload[name_at : name_at + NAME_BYTES],
            nonce=payload[name_at + NAME_BYTES :],
        )


@dataclass(frozen=True, slots=True)
class AuthorizationId:
    """0x0007: the lock's answer. The authenticator covers
    ``auth_id | uuid | nonce | client nonce from Authorization Data``."""

    COMMAND: ClassVar[Command] = Command.AUTHORIZATION_ID
    authenticator: bytes
    auth_id: int
    uuid: bytes
    nonce: bytes

    SIZE: ClassVar[int] = AUTHENTICATOR_BYTES + 4 + UUID_BYTES + NONCE_32

    def signed_part(self) -> bytes:
        return struct.pack("<I", self.auth_id) + self.uuid + self.nonce

    def encode(self) -> bytes:
        return self.authenticator + self.signed_part()

    @classmethod
    def decode(cls, payload: bytes) -> AuthorizationId:
        _expect(payload, cls.SIZE, "Authorization-ID")
        (auth_id,) = struct.unpack_from("<I", payload, AUTHENTICATOR_BYTES)
        uuid_at = AUTHENTICATOR_BYTES + 4
        return cls(
            authenticator=payload[:AUTHENTICATOR_BYTES],
            auth_id=int(auth_id),
            uuid=payload[uuid_at : uuid_at + UUID_BYTES],
            nonce=payload[uuid_at + UUID_BYTES :],
        )


@dataclass(frozen=True, slots=True)
class AuthorizationIdConfirmation:
    """0x001E: the client's confirmation; authenticator covers ``auth_id | lock nonce``."""

    COMMAND: ClassVar[Command] = Command.AUTHORIZATION_ID_CONFIRMATION
    authenticator: bytes
    auth_id: int

    SIZE: ClassVar[int] = AUTHENTICATOR_BYTES + 4

    def encode(self) -> bytes:
        return self.authenticator + struct.pack("<I", self.auth_id)

    @classmethod
    def decode(cls, payload: bytes) -> AuthorizationIdConfirmation:
        _expect(payload, cls.SIZE, "Authorization-ID Confirmation")
        (auth_id,) = struct.unpack_from("<I", payload, AUTHENTICATOR_BYTES)
        return cls(payload[:AUTHENTICATOR_BYTES], int(auth_id))


@dataclass(frozen=True, slots=True)
class Status:
    """0x000E."""

    COMMAND: ClassVar[Command] = Command.STATUS
    status: StatusCode

    def encode(self) -> bytes:
        return bytes([self.status])

    @classmethod
    def decode(cls, payload: bytes) -> Status:
        _expect(payload, 1, "Status")
        try:
            return cls(StatusCode(payload[0]))
        except ValueError:
            raise NukiProtocolError("bad_status", f"unknown status 0x{payload[0]:02X}") from None


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """0x0012: ``error code u8 | command identifier u16``. Unknown codes are kept as ints,
    since a newer firmware may send codes this table does not list."""

    COMMAND: ClassVar[Command] = Command.ERROR_REPORT
    error: int
    command: int

    def encode(self) -> bytes:
        return struct.pack("<BH", self.error, self.command)

    @classmethod
    def decode(cls, payload: bytes) -> ErrorReport:
        _expect(payload, 3, "Error Report")
        error, command = struct.unpack("<BH", payload)
        return cls(int(error), int(command))

    @property
    def known(self) -> ErrorCode | None:
        try:
            return ErrorCode(self.error)
        except ValueError:
            return None


def _enum_or(kind: type[enum.IntEnum], value: int, default: enum.IntEnum) -> enum.IntEnum:
    try:
        return kind(value)
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class KeyturnerStates:
    """0x000C: the lock's state.

    Layout: nuki state u8 | lock state u8 | trigger u8 | time (year u16, month, day, hour,
    minute, second) | timezone offset s16 | battery u8 | config update count u8 | lock'n'go
    timer u8 | last lock action u8 | last action trigger u8 | last action completion u8 |
    door sensor u8 | night mode u16. The battery byte holds "critical" in bit 0, "charging"
    in bit 1 and the charge in bits 2-7 (x2 = percent). Firmware before 2.0 stops after the
    battery byte, so the door sensor is then reported unavailable.
    """

    COMMAND: ClassVar[Command] = Command.KEYTURNER_STATES
    nuki_state: NukiState
    lock_state: NukiLockState
    trigger: int
    time: datetime
    timezone_offset_min: int
    battery_critical: bool
    battery_charging: bool
    battery_percent: int
    last_lock_action: int = 0
    last_action_completion: int = 0
    door_sensor: DoorSensorState = DoorSensorState.UNAVAILABLE
    # Fields newer firmware appends (remote access, BLE and Wi-Fi strength and status, MQTT,
    # Thread): kept as bytes, so a longer message round-trips.
    tail: bytes = b""

    MIN_SIZE: ClassVar[int] = 13
    SIZE: ClassVar[int] = 21

    def battery_byte(self) -> int:
        percent = max(0, min(100, self.battery_percent))
        return (
            ((percent // 2) << 2) | (2 if self.battery_charging else 0) | int(self.battery_critical)
        )

    def encode(self) -> bytes:
        t = self.time
        return struct.pack(
            "<BBBHBBBBBhBBBBBBBH",
            self.nuki_state,
            self.lock_state,
            self.trigger,
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            self.timezone_offset_min,
            self.battery_byte(),
            0,
            0,
            self.last_lock_action,
            0,
            self.last_action_completion,
            self.door_sensor,
            0,
        ) + bytes(self.tail)

    @classmethod
    def decode(cls, payload: bytes) -> KeyturnerStates:
        if len(payload) < cls.MIN_SIZE:
            raise NukiProtocolError(
                "bad_length", f"Keyturner States payload is {len(payload)} bytes"
            )
        nuki, lock, trigger, year, month, day, hour, minute, second, offset, battery = (
            struct.unpack_from("<BBBHBBBBBhB", payload)
        )
        try:
            when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            raise NukiProtocolError("bad_parameter", "Keyturner States time is invalid") from None
        door = DoorSensorState.UNAVAILABLE
        last_action = completion = 0
        if len(payload) >= 19:
            last_action, completion = payload[15], payload[17]
            door = DoorSensorState(_enum_or(DoorSensorState, payload[18], DoorSensorState.UNKNOWN))
        return cls(
            nuki_state=NukiState(_enum_or(NukiState, nuki, NukiState.UNINITIALIZED)),
            lock_state=NukiLockState(_enum_or(NukiLockState, lock, NukiLockState.UNDEFINED)),
            trigger=int(trigger),
            time=when,
            timezone_offset_min=int(offset),
            battery_critical=bool(battery & 0x01),
            battery_charging=bool(battery & 0x02),
            battery_percent=(battery >> 2) * 2,
            last_lock_action=last_action,
            last_action_completion=completion,
            door_sensor=door,
            tail=bytes(payload[cls.SIZE :]),
        )


@dataclass(frozen=True, slots=True)
class LockActionRequest:
    """0x000D: ``action u8 | app id u32 | flags u8 | [name suffix 20] | challenge nonce``."""

    COMMAND: ClassVar[Command] = Command.LOCK_ACTION
    action: LockAction
    app_id: int
    flags: int
    nonce: bytes

    SIZE: ClassVar[int] = 1 + 4 + 1 + NONCE_32
    SIZE_WITH_SUFFIX: ClassVar[int] = SIZE + 20

    def encode(self) -> bytes:
        return struct.pack("<BIB", self.action, self.app_id, self.flags) + self.nonce

    @classmethod
    def decode(cls, payload: bytes) -> LockActionRequest:
        if len(payload) not in (cls.SIZE, cls.SIZE_WITH_SUFFIX):
            raise NukiProtocolError("bad_length", f"Lock Action payload is {len(payload)} bytes")
        action, app_id, flags = struct.unpack_from("<BIB", payload)
        try:
            kind = LockAction(action)
        except ValueError:
            raise NukiProtocolError("bad_parameter", f"lock action 0x{action:02X}") from None
        return cls(kind, int(app_id), int(flags), payload[-NONCE_32:])


Message = (
    RequestData
    | PublicKey
    | Challenge
    | AuthorizationAuthenticator
    | AuthorizationData
    | AuthorizationId
    | AuthorizationIdConfirmation
    | Status
    | ErrorReport
    | KeyturnerStates
    | LockActionRequest
    | RequestConfig
    | Config
)

_DECODERS: dict[Command, type[Message]] = {
    Command.REQUEST_DATA: RequestData,
    Command.PUBLIC_KEY: PublicKey,
    Command.CHALLENGE: Challenge,
    Command.AUTHORIZATION_AUTHENTICATOR: AuthorizationAuthenticator,
    Command.AUTHORIZATION_DATA: AuthorizationData,
    Command.AUTHORIZATION_ID: AuthorizationId,
    Command.AUTHORIZATION_ID_CONFIRMATION: AuthorizationIdConfirmation,
    Command.STATUS: Status,
    Command.ERROR_REPORT: ErrorReport,
    Command.KEYTURNER_STATES: KeyturnerStates,
    Command.LOCK_ACTION: LockActionRequest,
    Command.REQUEST_CONFIG: RequestConfig,
    Command.CONFIG: Config,
}


def decode_message(command: int, payload: bytes) -> Message:
    """Decode the payload of ``command`` into its dataclass."""
    try:
        kind = _DECODERS[Command(command)]
    except (ValueError, KeyError):
        raise NukiProtocolError("unknown_command", f"unknown command 0x{command:04X}") from None
    return kind.decode(payload)


# Sizes of the plain (pairing service) payloads, needed to know when a plain reply that
# arrives in pieces (20-byte indications at the default MTU) is complete: the plain format
# has no length field.
PLAIN_PAYLOAD_SIZES: dict[Command, int] = {
    Command.REQUEST_DATA: 2,
    Command.PUBLIC_KEY: 32,
    Command.CHALLENGE: NONCE_32,
    Command.AUTHORIZATION_AUTHENTICATOR: AUTHENTICATOR_BYTES,
    Command.AUTHORIZATION_DATA: AuthorizationData.SIZE,
    Command.AUTHORIZATION_ID: AuthorizationId.SIZE,
    Command.AUTHORIZATION_ID_CONFIRMATION: AuthorizationIdConfirmation.SIZE,
    Command.STATUS: 1,
    Command.ERROR_REPORT: 3,
}
