"""What a Nuki Smart Lock advertises, and how a scanner recognises it (pure).

A Nuki in pairing mode sends **service data** for its pairing service UUID (AD type 0x21,
128-bit UUID), carrying its 4-byte Nuki ID, the hex number in its name ``Nuki_1A2B3C4D``.
Public evidence: a RaspiNukiBridge log of a lock being paired shows ``service_data=
{'a92ae100-...': b'*7Y\x9a'}`` for ``Nuki_Opener_2A37599A`` (the Opener's pairing service,
same scheme), and the NukiBleEsp32 library recognises pairing mode by exactly that: service
data present for the pairing service UUID. (Nuki BLE API §3 names the pairing service; it
does not say how it is advertised.) A paired lock
sends an iBeacon (Apple company id 0x004C, type 0x02 0x15) whose proximity UUID is the
keyturner service UUID. The lowest bit of its measured-power byte is a "new state
available" flag: set after a change (door opened, bolt moved) until a client reads the
Keyturner States. The byte itself depends on the model (:mod:`ble.nuki.models`): Smart Lock
2.0 sends 0xC4/0xC5, 3.0 and later 0xC8/0xC9, so only the bit may be compared. Watching it
lets a gateway notice changes without polling the lock over a connection, which would drain
its batteries.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Mapping

from ble.nuki.gatt import KEYTURNER_SERVICE, NUKI_SERVICES, PAIRING_SERVICE

APPLE_COMPANY_ID = 0x004C
IBEACON_PREFIX = b"\x02\x15"
# Smart Lock 2.0's measured-power byte with no news (-60 dBm); see ble.nuki.models.
POWER_NO_NEWS = 0xC4
NEW_STATE_BIT = 0x01

_FLAGS_GENERAL_DISCOVERABLE_NO_BR_EDR = 0x06
# Core Specification Supplement, Part A, §1.11: Service Data - 128-bit UUID.
_AD_SERVICE_DATA_UUID128 = 0x21


def _ad(ad_type: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, ad_type]) + data


def ibeacon_payload(
    new_state: bool, major: int = 0, minor: int = 0, power: int = POWER_NO_NEWS
) -> bytes:
    """The iBeacon body; ``power`` is the model's measured-power byte with no news."""
    byte = (power & ~NEW_STATE_BIT & 0xFF) | (NEW_STATE_BIT if new_state else 0)
    return (
        IBEACON_PREFIX
        + uuid.UUID(KEYTURNER_SERVICE).bytes
        + struct.pack(">HHB", major, minor, byte)
    )


def advertising_data(
    pairing_mode: bool, new_state: bool, power: int = POWER_NO_NEWS, nuki_id: int = 0
) -> bytes:
    """Legacy advertising data (at most 31 bytes): in pairing mode the pairing service's
    service data (the Nuki ID), otherwise the iBeacon."""
    flags = _ad(0x01, bytes([_FLAGS_GENERAL_DISCOVERABLE_NO_BR_EDR]))
    if pairing_mode:
        service = uuid.UUID(PAIRING_SERVICE).bytes[::-1]  # AD UUIDs are little-endian
        return flags + _ad(_AD_SERVICE_DATA_UUID128, service + struct.pack(">I", nuki_id))
    beacon = ibeacon_payload(new_state, power=power)
    return flags + _ad(0xFF, struct.pack("<H", APPLE_COMPANY_ID) + beacon)


def scan_response_data(name: str) -> bytes:
    return _ad(0x09, name.encode("utf-8")[:29])


def new_state_flag(manufacturer_data: Mapping[int, bytes]) -> bool | None:
    """The lock's "new state available" flag from its iBeacon, or None if absent."""
    beacon = manufacturer_data.get(APPLE_COMPANY_ID)
    if beacon is None or len(beacon) != 23 or not beacon.startswith(IBEACON_PREFIX):
        return None
    if beacon[2:18] != uuid.UUID(KEYTURNER_SERVICE).bytes:
        return None
    return bool(beacon[22] & NEW_STATE_BIT)


def looks_like_nuki(
    service_uuids: Iterable[str],
    manufacturer_data: Mapping[int, bytes],
    service_data: Mapping[str, bytes] | None = None,
) -> bool:
    if any(u.lower() in NUKI_SERVICES for u in service_uuids):
        return True
    if service_data and any(u.lower() in NUKI_SERVICES for u in service_data):
        return True
    return new_state_flag(manufacturer_data) is not None


def in_pairing_mode(
    service_uuids: Iterable[str], service_data: Mapping[str, bytes] | None = None
) -> bool:
    """Pairing mode: service data for the pairing service (what locks send), or the
    pairing service in the service list (accepted too; it costs nothing)."""
    if service_data and any(u.lower() == PAIRING_SERVICE for u in service_data):
        return True
    return any(u.lower() == PAIRING_SERVICE for u in service_uuids)


def nuki_id_from_pairing_data(service_data: Mapping[str, bytes]) -> int | None:
    """The Nuki ID a lock in pairing mode advertises, or None."""
    data = next((v for k, v in service_data.items() if k.lower() == PAIRING_SERVICE), None)
    if data is None or len(data) < 4:
        return None
    return int(struct.unpack_from(">I", data)[0])
