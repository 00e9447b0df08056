"""The lock's configuration: Request Config (0x0014) and Config (0x0015), pure codecs.

Nuki Smart Lock Bluetooth API (v2.x), §6 "Commands", Request Config and Config. Clients
ask for the config on their first poll (to learn the lock's name, firmware and Nuki ID), so
a lock, real or virtual, must answer it. The request carries the nonce of a Challenge the
client asked for just before (anti-replay, like a Lock Action).

Config layout (little-endian): Nuki ID u32 | name [32], zero-padded UTF-8 | latitude f32 |
longitude f32 | auto unlatch u8 | pairing enabled u8 | button enabled u8 | LED enabled u8 |
LED brightness u8 | current time (year u16, month, day, hour, minute, second) | timezone
offset s16 (minutes) | DST mode u8 | has fob u8 | fob actions 1-3 u8 | single lock u8 |
advertising mode u8 | has keypad u8 | firmware version [3] | hardware revision [2] |
HomeKit status u8 | timezone id u16 (74 bytes); newer firmware appends device type u8,
capabilities u8, then keypad 2.0 u8 and Matter status u8, which older clients ignore.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from ble.nuki.frames import NONCE_32, Command, NukiProtocolError

_BASE = struct.Struct("<I32sffBBBBBHBBBBBhBBBBBBBB3s2sBH")
# Timezone id "none": the lock keeps the offset only.
TIMEZONE_NONE = 0xFFFF


@dataclass(frozen=True, slots=True)
class RequestConfig:
    """0x0014: ``nonce[32]``, the Challenge the lock sent just before."""

    COMMAND: ClassVar[Command] = Command.REQUEST_CONFIG
    nonce: bytes

    def encode(self) -> bytes:
        return self.nonce

    @classmethod
    def decode(cls, payload: bytes) -> RequestConfig:
        if len(payload) != NONCE_32:
            raise NukiProtocolError(
                "bad_length", f"Request Config payload is {len(payload)} bytes, expected 32"
            )
        return cls(payload)


@dataclass(frozen=True, slots=True)
class Config:
    """0x0015: the lock's configuration (the fields a client reads)."""

    COMMAND: ClassVar[Command] = Command.CONFIG
    nuki_id: int
    name: str
    time: datetime
    firmware: tuple[int, int, int]
    hardware: tuple[int, int]
    latitude: float = 0.0
    longitude: float = 0.0
    auto_unlatch: bool = False
    pairing_enabled: bool = True
    button_enabled: bool = True
    led_enabled: bool = True
    led_brightness: int = 3
    timezone_offset_min: int = 0
    dst_mode: int = 0
    has_fob: bool = False
    fob_actions: tuple[int, int, int] = (1, 2, 0)
    single_lock: bool = False
    advertising_mode: int = 0
    has_keypad: bool = False
    homekit_status: int = 0
    timezone_id: int = TIMEZONE_NONE
    # Appended by Smart Lock 3.0 and later firmware; None when the lock does not send it.
    device_type: int | None = None
    capabilities: int | None = None
    # Appended by later firmware still (keypad 2.0, Matter); None when not sent.
    has_keypad_v2: int | None = None
    matter_status: int | None = None

    MIN_SIZE: ClassVar[int] = _BASE.size

    def encode(self) -> bytes:
        t = self.time
        body = _BASE.pack(
            self.nuki_id,
            self.name.encode("utf-8")[:32].ljust(32, b"\0"),
            self.latitude,
            self.longitude,
            self.auto_unlatch,
            self.pairing_enabled,
            self.button_enabled,
            self.led_enabled,
            self.led_brightness,
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            self.timezone_offset_min,
            self.dst_mode,
            self.has_fob,
            *self.fob_actions,
            self.single_lock,
            self.advertising_mode,
            self.has_keypad,
            bytes(self.firmware),
            bytes(self.hardware),
            self.homekit_status,
            self.timezone_id,
        )
        if self.device_type is not None:
            body += bytes([self.device_type, self.capabilities or 0])
            if self.has_keypad_v2 is not None:
                body += bytes([self.has_keypad_v2, self.matter_status or 0])
        return body

    @classmethod
    def decode(cls, payload: bytes) -> Config:
        if len(payload) < cls.MIN_SIZE:
            raise NukiProtocolError("bad_length", f"Config payload is {len(payload)} bytes")
        (
            nuki_id,
            name,
            latitude,
            longitude,
            auto_unlatch,
            pairing_enabled,
            button_enabled,
            led_enabled,
            led_brightness,
            year,
            month,
            day,
            hour,
            minute,
            second,
            offset,
            dst_mode,
            has_fob,
            fob1,
            fob2,
            fob3,
            single_lock,
            advertising_mode,
            has_keypad,
            firmware,
            hardware,
            homekit_status,
            timezone_id,
        ) = _BASE.unpack_from(payload)
        try:
            when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            raise NukiProtocolError("bad_parameter", "Config time is invalid") from None
        tail = payload[_BASE.size :]
        return cls(
            nuki_id=int(nuki_id),
            name=name.rstrip(b"\0").decode("utf-8", errors="replace"),
            time=when,
            firmware=(firmware[0], firmware[1], firmware[2]),
            hardware=(hardware[0], hardware[1]),
            latitude=float(latitude),
            longitude=float(longitude),
            auto_unlatch=bool(auto_unlatch),
            pairing_enabled=bool(pairing_enabled),
            button_enabled=bool(button_enabled),
            led_enabled=bool(led_enabled),
            led_brightness=int(led_brightness),
            timezone_offset_min=int(offset),
            dst_mode=int(dst_mode),
            has_fob=bool(has_fob),
            fob_actions=(int(fob1), int(fob2), int(fob3)),
            single_lock=bool(single_lock),
            advertising_mode=int(advertising_mode),
            has_keypad=bool(has_keypad),
            homekit_status=int(homekit_status),
            timezone_id=int(timezone_id),
            device_type=tail[0] if len(tail) >= 1 else None,
            capabilities=tail[1] if len(tail) >= 2 else None,
            has_keypad_v2=tail[2] if len(tail) >= 3 else None,
            matter_status=tail[3] if len(tail) >= 4 else None,
        )
