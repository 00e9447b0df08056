"""SwitchBot Lock command bodies, results and state payloads, pure.

The lock state byte and the alarm byte of the original Lock are documented in
OpenWonderLabs/SwitchBotAPI-BLE, ``devicetypes/lock.md``, "Lock Broadcast Message", Bytes 15
and 16 of the advertisement ("Lock Info": calibration, lock status, door status; "Double
lock control source": the alarms). The lock reports the same bytes in reply to its
lock-info command and in its notifications. The Lock Pro's longer Lock Info, the command
bodies and the result codes are the ones SwitchBot's own clients send to real locks; they
are not in the published document and are taken from what pySwitchbot sends and reads
(read, not copied; :mod:`ble.switchbot.models`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ble.switchbot.frames import SwitchBotProtocolError
from ble.switchbot.models import TRAITS, SwitchBotModel

# Command bodies, after the 0x57 magic and the key/IV header; the lock info, notifications
# and action bodies differ by model (ble.switchbot.models).
IV_REQUEST = bytes.fromhex("0f2103")  # followed by the key id; answered in plain
BASIC_INFO = bytes.fromhex("02")

# The IV reply's mode byte: 0 is AES-128-CTR; newer firmware may answer 1 (AES-GCM).
MODE_CTR = 0


class Result(enum.IntEnum):
    """The first byte of every reply."""

    ERROR = 0x00
    OK = 0x01
    OK_LOW_BATTERY = 0x06

    @classmethod
    def ok(cls, value: int) -> bool:
        return value in (cls.OK, cls.OK_LOW_BATTERY)


class SwitchBotAction(enum.IntEnum):
    """The last byte of the lock-action command."""

    LOCK = 0x00
    #: Unlock and, where the lock's EU unlatch feature is on, pull the latch.
    UNLATCH = 0x80
    #: Unlock without unlatching.
    UNLOCK = 0xA0


class Position(enum.IntEnum):
    """Lock Info, Bit6-4 "Lock Status" (lock.md, Byte 15). Invalid when not calibrated."""

    LOCKED = 0b000
    UNLOCKED = 0b001
    LOCKING = 0b010
    UNLOCKING = 0b011
    LOCKING_STOP = 0b100  # "Stuck"
    UNLOCKING_STOP = 0b101  # "Stuck"
    NOT_FULLY_LOCKED = 0b110  # EU lock type only
    HALF_LOCKED = 0b111  # Lock Pro's 4-bit status only (EU lock types)

    @property
    def moving(self) -> bool:
        return self in (Position.LOCKING, Position.UNLOCKING)

    @property
    def stuck(self) -> bool:
        return self in (Position.LOCKING_STOP, Position.UNLOCKING_STOP)


class Command(enum.Enum):
    """What a request asks, for the virtual lock's log and tests."""

    IV = "iv"
    LOCK_INFO = "lock_info"
    BASIC_INFO = "basic_info"
    NOTIFICATIONS = "notifications"
    ACTION = "action"


def iv_request(key_id: int) -> bytes:
    return IV_REQUEST + bytes([key_id])


def lock_info_request(model: SwitchBotModel) -> bytes:
    return TRAITS[model].lock_info


def notifications_request(model: SwitchBotModel) -> bytes:
    return TRAITS[model].notifications


def action_request(action: SwitchBotAction, model: SwitchBotModel = SwitchBotModel.LOCK) -> bytes:
    return TRAITS[model].action_prefix + bytes([action])


def classify(
    body: bytes, model: SwitchBotModel = SwitchBotModel.LOCK
) -> tuple[Command, SwitchBotAction | None]:
    """What a decrypted (or plain) request body asks a ``model`` lock; unknown bodies raise."""
    traits = TRAITS[model]
    prefix = traits.action_prefix
    if len(body) == len(IV_REQUEST) + 1 and body.startswith(IV_REQUEST):
        return Command.IV, None
    if body == traits.lock_info:
        return Command.LOCK_INFO, None
    if body == BASIC_INFO:
        return Command.BASIC_INFO, None
    if body == traits.notifications:
        return Command.NOTIFICATIONS, None
    if len(body) == len(prefix) + 1 and body.startswith(prefix):
        try:
            return Command.ACTION, SwitchBotAction(body[-1])
        except ValueError:
            pass
    raise SwitchBotProtocolError("unknown_command", f"a {len(body)}-byte request body")


@dataclass(frozen=True, slots=True)
class IvReply:
    """The plain reply to the IV request: the connection's IV and the cipher it uses."""

    mode: int
    iv: bytes

    def encode_body(self) -> bytes:
        return self.iv

    @classmethod
    def decode(cls, header: bytes, body: bytes) -> IvReply:
        # Bytes 1-3 of the reply: byte 2 of the frame (header[1]) is the cipher mode.
        mode = header[1] if len(header) > 1 else -1
        if mode != MODE_CTR:
            raise SwitchBotProtocolError(
                "unsupported_mode",
                f"the lock asks for cipher mode {mode} (AES-GCM, newer firmware); this "
                "driver speaks AES-128-CTR only",
            )
        if len(body) != 16:
            raise SwitchBotProtocolError("bad_body", f"a {len(body)}-byte IV")
        return cls(mode, body)


@dataclass(frozen=True, slots=True)
class LockInfo:
    """The bolt, the door and the alarms. The original Lock's two bytes are lock.md's Bytes
    15-16; the Lock Pro's six are pySwitchbot's reading (:mod:`ble.switchbot.models`)."""

    calibrated: bool
    position: Position
    door_open: bool
    unclosed_alarm: bool = False
    unlocked_alarm: bool = False
    auto_lock_paused: bool = False

    def encode(self, model: SwitchBotModel = SwitchBotModel.LOCK) -> bytes:
        if model is SwitchBotModel.LOCK_PRO:
            first = (0x80 if self.calibrated else 0) | (self.position << 3)
            second = (0x10 if self.door_open else 0) | (0x08 if self.auto_lock_paused else 0)
            alarms = (0x80 if self.unclosed_alarm else 0) | (0x40 if self.unlocked_alarm else 0)
            return bytes([first, second, 0, 0, 0, alarms])
        if self.position is Position.HALF_LOCKED:
            raise SwitchBotProtocolError("bad_body", "the original Lock has no half-locked state")
        first = (0x80 if self.calibrated else 0) | (self.position << 4)
        first |= 0x04 if self.door_open else 0
        second = (0x20 if self.unclosed_alarm else 0) | (0x10 if self.unlocked_alarm else 0)
        second |= 0x02 if self.auto_lock_paused else 0
        return bytes([first, second])

    @classmethod
    def decode(cls, body: bytes, model: SwitchBotModel = SwitchBotModel.LOCK) -> LockInfo:
        size = TRAITS[model].info_bytes
        if len(body) < size:
            raise SwitchBotProtocolError("bad_body", f"a {len(body)}-byte lock info")
        if model is SwitchBotModel.LOCK_PRO:
            if body[0] & 0x40:
                raise SwitchBotProtocolError("bad_body", "an undefined lock status")
            return cls(
                calibrated=bool(body[0] & 0x80),
                position=Position((body[0] >> 3) & 0b111),
                door_open=bool(body[1] & 0x10),
                unclosed_alarm=bool(body[5] & 0x80),
                unlocked_alarm=bool(body[5] & 0x40),
                auto_lock_paused=bool(body[1] & 0x08),
            )
        first, second = body[0], body[1]
        status = (first >> 4) & 0b111
        if status == Position.HALF_LOCKED:  # lock.md defines 000b-110b only
            raise SwitchBotProtocolError("bad_body", "an undefined lock status")
        return cls(
            calibrated=bool(first & 0x80),
            position=Position(status),
            door_open=bool(first & 0x04),
            unclosed_alarm=bool(second & 0x20),
            unlocked_alarm=bool(second & 0x10),
            auto_lock_paused=bool(second & 0x02),
        )


@dataclass(frozen=True, slots=True)
class BasicInfo:
    """The reply to the basic-info command: battery percent and firmware (tenths)."""

    battery_percent: int
    firmware_tenths: int

    def encode(self) -> bytes:
        return bytes([self.battery_percent, self.firmware_tenths])

    @classmethod
    def decode(cls, body: bytes) -> BasicInfo:
        if len(body) < 2:
            raise SwitchBotProtocolError("bad_body", f"a {len(body)}-byte basic info")
        if body[0] > 100:
            raise SwitchBotProtocolError("bad_body", f"a battery of {body[0]} %")
        return cls(body[0], body[1])
