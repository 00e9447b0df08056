"""What a Nuki Smart Lock advertises, and how a scanner recognises it (pure).

A Nuki in pairing mode advertises the pairing service UUID (Nuki BLE API §3). A paired lock
sends an iBeacon (Apple company id 0x004C, type 0x02 0x15) whose proximity UUID is the
keyturner service UUID. Its measured-power byte doubles as a "new state available" flag:
-60 dBm normally, -59 dBm after a change (door opened, bolt moved) until a client reads the
Keyturner States. Watching that byte lets a gateway notice changes without polling the lock
over a connection, which would drain its batteries.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Mapping

from ble.nuki.gatt import KEYTURNER_SERVICE, NUKI_SERVICES, PAIRING_SERVICE

APPLE_COMPANY_ID = 0x004C
IBEACON_PREFIX = b"\x02\x15"
POWER_NO_NEWS = -60
POWER_NEW_STATE = -59

_FLAGS_GENERAL_DISCOVERABLE_NO_BR_EDR = 0x06


def _ad(ad_type: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, ad_type]) + data


def ibeacon_payload(new_state: bool, major: int = 0, minor: int = 0) -> bytes:
    power = POWER_NEW_STATE if new_state else POWER_NO_NEWS
    return (
        IBEACON_PREFIX
        + uuid.UUID(KEYTURNER_SERVICE).bytes
        + struct.pack(">HHb", major, minor, power)
    )


def advertising_data(pairing_mode: bool, new_state: bool) -> bytes:
    """Legacy advertising data (at most 31 bytes)."""
    flags = _ad(0x01, bytes([_FLAGS_GENERAL_DISCOVERABLE_NO_BR_EDR]))
    if pairing_mode:
        return flags + _ad(0x07, uuid.UUID(PAIRING_SERVICE).bytes[::-1])
    return flags + _ad(0xFF, struct.pack("<H", APPLE_COMPANY_ID) + ibeacon_payload(new_state))


def scan_response_data(name: str) -> bytes:
    return _ad(0x09, name.encode("utf-8")[:29])


def new_state_flag(manufacturer_data: Mapping[int, bytes]) -> bool | None:
    """The lock's "new state available" flag from its iBeacon, or None if absent."""
    beacon = manufacturer_data.get(APPLE_COMPANY_ID)
    if beacon is None or len(beacon) != 23 or not beacon.startswith(IBEACON_PREFIX):
        return None
    if beacon[2:18] != uuid.UUID(KEYTURNER_SERVICE).bytes:
        return None
    return bool(struct.unpack_from(">b", beacon, 22)[0] == POWER_NEW_STATE)


def looks_like_nuki(service_uuids: Iterable[str], manufacturer_data: Mapping[int, bytes]) -> bool:
    if any(u.lower() in NUKI_SERVICES for u in service_uuids):
        return True
    return new_state_flag(manufacturer_data) is not None


def in_pairing_mode(service_uuids: Iterable[str]) -> bool:
    return any(u.lower() == PAIRING_SERVICE for u in service_uuids)
