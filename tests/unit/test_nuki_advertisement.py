"""What a Nuki advertises and how the driver reads it (issue 13, points 5 and 6), against
bytes seen from real locks."""

from __future__ import annotations

import uuid

import pytest

from ble.bumble_backend.advertising import parse_advertisement, split_structures
from ble.nuki.advertisement import (
    APPLE_COMPANY_ID,
    advertising_data,
    in_pairing_mode,
    looks_like_nuki,
    new_state_flag,
    nuki_id_from_pairing_data,
)
from ble.nuki.gatt import KEYTURNER_SERVICE, PAIRING_SERVICE
from ble.nuki.models import TRAITS, NukiModel

KEYTURNER_UUID = uuid.UUID(KEYTURNER_SERVICE).bytes


def beacon(power: int) -> dict[int, bytes]:
    return {APPLE_COMPANY_ID: b"\x02\x15" + KEYTURNER_UUID + b"\x00\x00\x00\x00" + bytes([power])}


@pytest.mark.parametrize(
    ("power", "flag"),
    [
        # Smart Lock 2.0: 0xC4 (-60 dBm) idle, 0xC5 with a new state.
        (0xC4, False),
        (0xC5, True),
        # Smart Lock 3.0 Pro as logged in RaspiNukiBridge issue 15: 0xC8 idle; "when this
        # number is odd, a new state is available". 3.0 and 4.0: 0xC8/0xC9.
        (0xC8, False),
        (0xC9, True),
    ],
)
def test_the_new_state_flag_is_the_lowest_bit(power: int, flag: bool) -> None:
    assert new_state_flag(beacon(power)) is flag


def test_a_beacon_of_something_else_is_no_flag() -> None:
    other = {APPLE_COMPANY_ID: b"\x02\x15" + bytes(16) + b"\x00\x00\x00\x00\xc9"}
    assert new_state_flag(other) is None
    assert new_state_flag({}) is None
    assert not looks_like_nuki([], other)


@pytest.mark.parametrize("model", list(NukiModel))
def test_each_model_advertises_its_own_power_byte(model: NukiModel) -> None:
    for new_state in (False, True):
        data = advertising_data(False, new_state, power=TRAITS[model].beacon_power)
        power = data[-1]
        assert power & 0xFE == TRAITS[model].beacon_power
        assert power & 0x01 == int(new_state)
    expected = 0xC4 if model is NukiModel.SMART_LOCK_2 else 0xC8
    assert TRAITS[model].beacon_power == expected


def test_pairing_mode_is_service_data_for_the_pairing_service() -> None:
    """Issue 13, point 6. A lock in pairing mode sends service data (AD 0x21) for its
    pairing service carrying its Nuki ID: a RaspiNukiBridge log of a pairing shows
    ``service_data={'a92ae100-...': b'*7Y\\x9a'}`` for ``Nuki_Opener_2A37599A``, and the
    NukiBleEsp32 library detects pairing mode by that service data. Parsed as bleak would."""
    data = advertising_data(True, False, nuki_id=0x2A37599A)
    assert len(data) <= 31
    fields = parse_advertisement(split_structures(data))
    assert fields.service_data == {PAIRING_SERVICE: bytes.fromhex("2A37599A")}
    assert list(fields.service_uuids) == []
    assert in_pairing_mode(fields.service_uuids, fields.service_data)
    assert looks_like_nuki(fields.service_uuids, fields.manufacturer_data, fields.service_data)
    assert nuki_id_from_pairing_data(fields.service_data) == 0x2A37599A
    paired = parse_advertisement(split_structures(advertising_data(False, False)))
    assert not in_pairing_mode(paired.service_uuids, paired.service_data)
    assert new_state_flag(paired.manufacturer_data) is False
