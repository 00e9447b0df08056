"""SwitchBot Lock command bodies, results and state payloads, pure.

The lock state byte and the alarm byte are documented in OpenWonderLabs/SwitchBotAPI-BLE,
``devicetypes/lock.md``, "Lock Broadcast Message", Bytes 15 and 16 of the advertisement
("Lock Info": calibration, lock status, door status; "Double lock control source": the
alarms). The lock reports the same two bytes in reply to its lock-info command and in its
notifications. The command bodies and the result codes are the ones SwitchBot's own clients
send to the original SwitchBot Lock (``o``, 0x6F); they are not in the published document
and are taken from what pySwitchbot sends to real locks (read, not copied).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ble.switchbot.frames import SwitchBotProtocolError

# Command bodies, after the 0x57 magic and the key/IV header.
IV_REQUEST = bytes.fromhex("0f2103")  # followed by the key id; answered in plain
LOCK_INFO = bytes.fromhex("0f4f8101")
BASIC_INFO = bytes.fromhex("02")
# Ask the lock to notify state changes on RX for this connection (0x1E: for 30 s).
ENABLE_NOTIFICATIONS = bytes.fromhex("0e01001e00008101")
ACTION_PREFIX = bytes.fromhex("0f4e010110")

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


def action_request(action: SwitchBotAction) -> bytes:
    return ACTION_PREFIX + bytes([action])


def classify(body: bytes) -> tuple[Command, SwitchBotAction | None]:
    """What a decrypted (or plain) request body asks; unknown bodies raise."""
    if len(body) == len(IV_REQUEST) + 1 and body.startswith(IV_REQUEST):
        return Command.IV, None
    if body == LOCK_INFO:
        return Command.LOCK_INFO, None
    if body == BASIC_INFO:
        return Command.BASIC_INFO, None
    if body == ENABLE_NOTIFICATIONS:
        return Command.NOTIFICATIONS, None
    if len(body) == len(ACTION_PREFIX) + 1 and body.startswith(ACTION_PREFIX):
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
    """lock.md Bytes 15-16: the bolt, the door and the alarms."""

    calibrated: bool
    position: Position
    door_open: bool
    unclosed_alarm: bool = False
    unlocked_alarm: bool = False
    auto_lock_paused: bool = False

    BYTES = 2

    def encode(self) -> bytes:
        first = (0x80 if self.calibrated else 0) | (self.position << 4)
        first |= 0x04 if self.door_open else 0
        second = (0x20 if self.unclosed_alarm else 0) | (0x10 if self.unlocked_alarm else 0)
        second |= 0x02 if self.auto_lock_paused else 0
        return bytes([first, second])

    @classmethod
    def decode(cls, body: bytes) -> LockInfo:
        if len(body) < cls.BYTES:
            raise SwitchBotProtocolError("bad_body", f"a {len(body)}-byte lock info")
        first, second = body[0], body[1]
        try:
            position = Position((first >> 4) & 0b111)
        except ValueError:
            raise SwitchBotProtocolError("bad_body", "an undefined lock status") from None
        return cls(
            calibrated=bool(first & 0x80),
            position=position,
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
