"""Advertising data (AD structures) to the fields bleak reports: pure, no I/O.

Implements the parts of the Core Specification Supplement, Part A ("Data Types Specification")
that bleak's :class:`~bleak.backends.scanner.AdvertisementData` exposes: service UUID lists
(§1.1), local name (§1.2), TX power level (§1.5), service data (§1.11) and manufacturer
specific data (§1.4).

Advertisements come from any device in radio range, so the input is untrusted: a malformed
structure is skipped, never raised on. When an advertisement and its scan response are
merged, the same field may appear twice; lists are de-duplicated in order and, for names and
maps, the last value wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# AD type codes (Bluetooth Assigned Numbers, §2.3 "Common Data Types").
AD_INCOMPLETE_UUID16 = 0x02
AD_COMPLETE_UUID16 = 0x03
AD_INCOMPLETE_UUID32 = 0x04
AD_COMPLETE_UUID32 = 0x05
AD_INCOMPLETE_UUID128 = 0x06
AD_COMPLETE_UUID128 = 0x07
AD_SHORT_LOCAL_NAME = 0x08
AD_COMPLETE_LOCAL_NAME = 0x09
AD_TX_POWER_LEVEL = 0x0A
AD_SERVICE_DATA_UUID16 = 0x16
AD_SERVICE_DATA_UUID32 = 0x20
AD_SERVICE_DATA_UUID128 = 0x21
AD_MANUFACTURER_SPECIFIC = 0xFF

_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"


@dataclass(frozen=True, slots=True)
class AdvertisementFields:
    """What one advertisement (plus its scan response) says about the advertiser."""

    local_name: str | None = None
    service_uuids: tuple[str, ...] = ()
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    tx_power: int | None = None


def uuid16_to_str(value: int) -> str:
    return f"0000{value:04x}{_BASE_UUID_SUFFIX}"


def uuid32_to_str(value: int) -> str:
    return f"{value:08x}{_BASE_UUID_SUFFIX}"


def uuid128_le_to_str(data: bytes) -> str:
    """A 128-bit UUID as sent over the air (little-endian) in bleak's lower-case form."""
    return str(uuid.UUID(bytes=bytes(reversed(data))))


def split_structures(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Split raw advertising data into ``(ad_type, value)`` pairs (Core Vol 3, Part C, §11).

    Stops at a zero length (the padding that ends significant data) or at a structure that
    runs past the end of ``data``.
    """
    offset = 0
    while offset < len(data):
        length = data[offset]
        if length == 0 or offset + 1 + length > len(data):
            return
        yield data[offset + 1], bytes(data[offset + 2 : offset + 1 + length])
        offset += 1 + length


def _uuid_list(value: bytes, width: int) -> list[str]:
    if len(value) % width:
        return []
    chunks = [value[i : i + width] for i in range(0, len(value), width)]
    if width == 2:
        return [uuid16_to_str(int.from_bytes(c, "little")) for c in chunks]
    if width == 4:
        return [uuid32_to_str(int.from_bytes(c, "little")) for c in chunks]
    return [uuid128_le_to_str(c) for c in chunks]


def _decode_name(value: bytes) -> str | None:
    name = value.decode("utf-8", errors="replace").rstrip("\x00")
    return name or None


def parse_advertisement(structures: Iterable[tuple[int, bytes]]) -> AdvertisementFields:
    """Collect bleak's fields from ``(ad_type, value)`` pairs; unknown types are ignored."""
    complete_name: str | None = None
    short_name: str | None = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None

    for ad_type, raw in structures:
        value = bytes(raw)
        if ad_type in (AD_INCOMPLETE_UUID16, AD_COMPLETE_UUID16):
            found = _uuid_list(value, 2)
        elif ad_type in (AD_INCOMPLETE_UUID32, AD_COMPLETE_UUID32):
            found = _uuid_list(value, 4)
        elif ad_type in (AD_INCOMPLETE_UUID128, AD_COMPLETE_UUID128):
            found = _uuid_list(value, 16)
        else:
            found = []
            if ad_type == AD_COMPLETE_LOCAL_NAME:
                complete_name = _decode_name(value) or complete_name
            elif ad_type == AD_SHORT_LOCAL_NAME:
                short_name = _decode_name(value) or short_name
            elif ad_type == AD_TX_POWER_LEVEL and len(value) == 1:
                tx_power = int.from_bytes(value, "little", signed=True)
            elif ad_type == AD_MANUFACTURER_SPECIFIC and len(value) >= 2:
                manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
            elif ad_type == AD_SERVICE_DATA_UUID16 and len(value) >= 2:
                service_data[uuid16_to_str(int.from_bytes(value[:2], "little"))] = value[2:]
            elif ad_type == AD_SERVICE_DATA_UUID32 and len(value) >= 4:
                service_data[uuid32_to_str(int.from_bytes(value[:4], "little"))] = value[4:]
            elif ad_type == AD_SERVICE_DATA_UUID128 and len(value) >= 16:
                service_data[uuid128_le_to_str(value[:16])] = value[16:]
        for item in found:
            if item not in uuids:
                uuids.append(item)

    return AdvertisementFields(
        local_name=complete_name or short_name,
        service_uuids=tuple(uuids),
        manufacturer_data=manufacturer,
        service_data=service_data,
        tx_power=tx_power,
    )


AD_FLAGS = 0x01
# LE General Discoverable Mode, BR/EDR Not Supported (Supplement Part A, §1.3).
FLAGS_LE_GENERAL_DISCOVERABLE = 0x06
LEGACY_ADVERTISING_DATA_MAX = 31


def _uuid_structure(value: str) -> tuple[int, bytes]:
    parsed = uuid.UUID(value)
    if str(parsed).endswith(_BASE_UUID_SUFFIX) and parsed.int >> 96 <= 0xFFFF:
        return AD_COMPLETE_UUID16, (parsed.int >> 96).to_bytes(2, "little")
    return AD_COMPLETE_UUID128, bytes(reversed(parsed.bytes))


def encode_advertisement(
    *,
    local_name: str | None = None,
    service_uuids: Iterable[str] = (),
    manufacturer_data: dict[int, bytes] | None = None,
) -> bytes:
    """Advertising data for a discoverable LE-only peripheral, within the 31-byte legacy
    limit (raises ``ValueError`` when it does not fit)."""
    structures: list[tuple[int, bytes]] = [(AD_FLAGS, bytes([FLAGS_LE_GENERAL_DISCOVERABLE]))]
    by_type: dict[int, bytes] = {}
    for value in service_uuids:
        ad_type, encoded = _uuid_structure(value)
        by_type[ad_type] = by_type.get(ad_type, b"") + encoded
    structures += sorted(by_type.items())
    for company, payload in (manufacturer_data or {}).items():
        structures.append((AD_MANUFACTURER_SPECIFIC, company.to_bytes(2, "little") + payload))
    if local_name:
        structures.append((AD_COMPLETE_LOCAL_NAME, local_name.encode("utf-8")))
    data = b"".join(bytes([len(v) + 1, t]) + v for t, v in structures)
    if len(data) > LEGACY_ADVERTISING_DATA_MAX:
        raise ValueError(
            f"advertising data is {len(data)} bytes; legacy advertising carries at most "
            f"{LEGACY_ADVERTISING_DATA_MAX}"
        )
    return data
