"""What a SwitchBot Lock advertises, pure: OpenWonderLabs/SwitchBotAPI-BLE,
``devicetypes/lock.md``, "Lock Broadcast Message".

* ADV_IND carries manufacturer data under company ID 0x0969: the lock's MAC address
  (6 bytes), a sequence number (1-255, "increases when the broadcast data is updated", 0 is
  skipped on overflow), Lock Info (Byte 15) and the alarm byte (Byte 16), then a reserved
  byte. bleak strips the company ID, so the value starts with the MAC.
* SCAN_RSP carries service data under the 16-bit UUID 0xFD3D: the device type in bits 6-0
  of byte 0 (``o``, 0x6F, for the lock), a reserved byte, and the battery in bits 6-0 of
  byte 2.
* The Lock Pro (``$``, 0x24; not in the document) carries a longer manufacturer data with
  the battery in it (:mod:`ble.switchbot.models`).

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
from ble.switchbot.models import TRAITS, SwitchBotModel, model_of_device_type

_FLAGS_GENERAL_DISCOVERABLE_NO_BR_EDR = 0x06
_AD_FLAGS = 0x01
_AD_MANUFACTURER = 0xFF
_AD_SERVICE_DATA_UUID16 = 0x16


@dataclass(frozen=True, slots=True)
class LockAdvertisement:
    model: SwitchBotModel
    mac: bytes
    sequence: int
    info: LockInfo
    battery_percent: int | None


def next_sequence(sequence: int) -> int:
    """1 to 255, then 1 again (lock.md, Byte 14)."""
    return sequence % 255 + 1


def mac_bytes(address: str) -> bytes:
    return bytes.fromhex(address.replace(":", ""))


def manufacturer_payload(
    mac: bytes,
    sequence: int,
    info: LockInfo,
    battery_percent: int = 0,
    model: SwitchBotModel = SwitchBotModel.LOCK,
) -> bytes:
    """The manufacturer data after the company ID. The original Lock: MAC, sequence, Lock
    Info (2 bytes), a reserved byte (lock.md). The Lock Pro: MAC, sequence, Lock Info bytes
    0-1, the battery, a double-lock byte, the alarm byte (pySwitchbot's reading)."""
    if model is SwitchBotModel.LOCK_PRO:
        encoded = info.encode(model)
        return (
            mac + bytes([sequence]) + encoded[:2] + bytes([battery_percent & 0x7F, 0, encoded[5]])
        )
    return mac + bytes([sequence]) + info.encode(model) + b"\x00"


def service_payload(battery_percent: int, model: SwitchBotModel = SwitchBotModel.LOCK) -> bytes:
    return bytes([TRAITS[model].device_type, 0x00, battery_percent & 0x7F])


def _ad(ad_type: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, ad_type]) + data


def advertising_data(
    mac: bytes,
    sequence: int,
    info: LockInfo,
    battery_percent: int = 0,
    model: SwitchBotModel = SwitchBotModel.LOCK,
) -> bytes:
    flags = _ad(_AD_FLAGS, bytes([_FLAGS_GENERAL_DISCOVERABLE_NO_BR_EDR]))
    payload = struct.pack("<H", COMPANY_ID) + manufacturer_payload(
        mac, sequence, info, battery_percent, model
    )
    return flags + _ad(_AD_MANUFACTURER, payload)


def scan_response_data(battery_percent: int, model: SwitchBotModel = SwitchBotModel.LOCK) -> bytes:
    uuid = struct.pack("<H", SERVICE_DATA_UUID16)
    return _ad(_AD_SERVICE_DATA_UUID16, uuid + service_payload(battery_percent, model))


def decode(
    manufacturer_data: Mapping[int, bytes],
    service_data: Mapping[str, bytes],
    model: SwitchBotModel | None = None,
) -> LockAdvertisement | None:
    """The lock's advertisement, or None when this is not a SwitchBot Lock's (or the parts
    heard so far are too short to tell). The model comes from the scan response's device
    type, else from ``model`` (the one the owner configured), else from the length."""
    service = service_data.get(SERVICE_DATA_UUID)
    if service is not None:
        if len(service) < 3:
            return None
        model = model_of_device_type(service[0])
        if model is None:
            return None
    payload = manufacturer_data.get(COMPANY_ID)
    if payload is None:
        return None
    if model is None:
        model = (
            SwitchBotModel.LOCK_PRO
            if len(payload) >= TRAITS[SwitchBotModel.LOCK_PRO].manufacturer_bytes
            else SwitchBotModel.LOCK
        )
    if len(payload) < TRAITS[model].manufacturer_bytes - 1:
        return None
    try:
        if model is SwitchBotModel.LOCK_PRO:
            info = LockInfo.decode(payload[7:9] + bytes(3) + payload[11:12], model)
            battery: int | None = payload[9] & 0x7F
        else:
            info = LockInfo.decode(payload[7:9], model)
            battery = service[2] & 0x7F if service is not None else None
    except SwitchBotProtocolError:  # not a lock's Lock Info byte
        return None
    return LockAdvertisement(model, bytes(payload[:6]), payload[6], info, battery)
