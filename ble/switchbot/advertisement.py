"""What a SwitchBot Lock advertises, pure: OpenWonderLabs/SwitchBotAPI-BLE,
``devicetypes/lock.md``, "Lock Broadcast Message".

* ADV_IND carries manufacturer data under company ID 0x0969: the lock's MAC address
  (6 bytes), a sequence number (1-255, "increases when the broadcast data is updated", 0 is
  skipped on overflow), Lock Info (Byte 15) and the alarm byte (Byte 16), then a reserved
  byte. bleak strips the company ID, so the value starts with the MAC.
* SCAN_RSP carries service data under the 16-bit UUID 0xFD3D: the device type in bits 6-0
  of byte 0 (``o``, 0x6F, for the lock), a reserved byte, and the battery in bits 6-0 of
  byte 2.

An advertisement is not authenticated: anyone can broadcast one. The driver takes a new
sequence number only as a hint to read the state over the encrypted link, never as the
state itself.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

from ble.switchbot.frames import SwitchBotProtocolError
from ble.switchbot.gatt import COMPANY_ID, SERVICE_DATA_UUID, SERVICE_DATA_UUID16
from ble.switchbot.messages import LockInfo

DEVICE_TYPE_LOCK = 0x6F  # 'o'
MANUFACTURER_BYTES = 10
_FLAGS_GENERAL_DISCOVERABLE_NO_BR_EDR = 0x06
_AD_FLAGS = 0x01
_AD_MANUFACTURER = 0xFF
_AD_SERVICE_DATA_UUID16 = 0x16


@dataclass(frozen=True, slots=True)
class LockAdvertisement:
    mac: bytes
    sequence: int
    info: LockInfo
    battery_percent: int | None


def next_sequence(sequence: int) -> int:
    """1 to 255, then 1 again (lock.md, Byte 14)."""
    return sequence % 255 + 1


def mac_bytes(address: str) -> bytes:
    return bytes.fromhex(address.replace(":", ""))


def manufacturer_payload(mac: bytes, sequence: int, info: LockInfo) -> bytes:
    """The manufacturer data after the company ID."""
    return mac + bytes([sequence]) + info.encode() + b"\x00"


def service_payload(battery_percent: int) -> bytes:
    return bytes([DEVICE_TYPE_LOCK, 0x00, battery_percent & 0x7F])


def _ad(ad_type: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, ad_type]) + data


def advertising_data(mac: bytes, sequence: int, info: LockInfo) -> bytes:
    flags = _ad(_AD_FLAGS, bytes([_FLAGS_GENERAL_DISCOVERABLE_NO_BR_EDR]))
    payload = struct.pack("<H", COMPANY_ID) + manufacturer_payload(mac, sequence, info)
    return flags + _ad(_AD_MANUFACTURER, payload)


def scan_response_data(battery_percent: int) -> bytes:
    uuid = struct.pack("<H", SERVICE_DATA_UUID16)
    return _ad(_AD_SERVICE_DATA_UUID16, uuid + service_payload(battery_percent))


def decode(
    manufacturer_data: Mapping[int, bytes], service_data: Mapping[str, bytes]
) -> LockAdvertisement | None:
    """The lock's advertisement, or None when this is not a SwitchBot Lock's (or the parts
    heard so far are too short to tell)."""
    service = service_data.get(SERVICE_DATA_UUID)
    if service is not None and (len(service) < 3 or service[0] & 0x7F != DEVICE_TYPE_LOCK):
        return None
    payload = manufacturer_data.get(COMPANY_ID)
    if payload is None or len(payload) < MANUFACTURER_BYTES - 1:
        return None
    try:
        info = LockInfo.decode(payload[7:9])
    except SwitchBotProtocolError:  # not a lock's Lock Info byte
        return None
    battery = service[2] & 0x7F if service is not None else None
    return LockAdvertisement(bytes(payload[:6]), payload[6], info, battery)
