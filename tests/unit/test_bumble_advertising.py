"""The pure translations of the Bumble backend: advertising data and GATT properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ble.bumble_backend.advertising import (
    AdvertisementFields,
    encode_advertisement,
    parse_advertisement,
    split_structures,
)
from ble.bumble_backend.services import bleak_uuid, property_names

NUKI_SERVICE = "a92ee200-5501-11e4-916c-0800200c9a66"
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"


def parse(data: bytes) -> AdvertisementFields:
    return parse_advertisement(split_structures(data))


def test_encode_then_parse_round_trips() -> None:
    data = encode_advertisement(
        local_name="Nki",
        service_uuids=[NUKI_SERVICE],
        manufacturer_data={0x004C: b"\x02"},
    )
    assert len(data) == 31
    assert data[:3] == b"\x02\x01\x06"  # LE General Discoverable, BR/EDR not supported
    fields = parse(data)
    assert fields.local_name == "Nki"
    assert fields.service_uuids == (NUKI_SERVICE,)
    assert fields.manufacturer_data == {0x004C: b"\x02"}


def test_16_bit_uuids_use_the_short_form_on_air() -> None:
    data = encode_advertisement(service_uuids=[BATTERY_SERVICE])
    assert b"\x03\x03\x0f\x18" in data
    assert parse(data).service_uuids == (BATTERY_SERVICE,)


def test_too_long_for_legacy_advertising_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 31"):
        encode_advertisement(local_name="x" * 40)


def test_merged_advertisement_and_scan_response_are_deduplicated() -> None:
    adv = encode_advertisement(local_name="Lock", service_uuids=[NUKI_SERVICE])
    fields = parse(adv + adv)
    assert fields.service_uuids == (NUKI_SERVICE,)
    assert fields.local_name == "Lock"


def test_complete_name_wins_over_short_name_and_other_fields_decode() -> None:
    data = (
        b"\x04\x08Nu\x00"  # shortened name (with a NUL to strip)
        + b"\x05\x09Nuki"  # complete name
        + b"\x02\x0a\xf4"  # TX power -12 dBm
        + b"\x05\x16\x0f\x18\x64\x00"  # service data for 0x180F
        + b"\x05\x05\x78\x56\x34\x12"  # a 32-bit service UUID
    )
    fields = parse(data)
    assert fields.local_name == "Nuki"
    assert fields.tx_power == -12
    assert fields.service_data == {BATTERY_SERVICE: b"\x64\x00"}
    assert fields.service_uuids == ("12345678-0000-1000-8000-00805f9b34fb",)


def test_malformed_structures_are_skipped_not_raised() -> None:
    assert parse(b"\x09\x09Nu") == AdvertisementFields()  # runs past the end
    assert parse(b"\x00\x09Nuki") == AdvertisementFields()  # zero length ends the data
    # A UUID list of the wrong width and a one-byte manufacturer field carry nothing.
    assert parse(b"\x04\x03\x0f\x18\x0a\x02\xff\x01") == AdvertisementFields()


@given(st.binary(max_size=64))
def test_any_bytes_parse_without_raising(data: bytes) -> None:
    fields = parse(data)
    assert all(len(u) == 36 for u in fields.service_uuids)


def test_property_names_follow_bleak() -> None:
    assert property_names(0x02 | 0x08 | 0x20) == ["read", "write", "indicate"]
    assert property_names(0x04 | 0x10) == ["write-without-response", "notify"]
    assert property_names(0) == []


def test_bleak_uuid_from_bumble_uuids() -> None:
    from bumble.core import UUID

    assert bleak_uuid(UUID.from_16_bits(0x2902)) == "00002902-0000-1000-8000-00805f9b34fb"
    assert bleak_uuid(UUID(NUKI_SERVICE.upper())) == NUKI_SERVICE
