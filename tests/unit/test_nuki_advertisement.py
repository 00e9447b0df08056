"""What a Nuki advertises and how the driver reads it (issue 13, points 5 and 6), against
bytes seen from real locks."""

from __future__ import annotations

import uuid

import pytest

from ble.nuki.advertisement import (
    APPLE_COMPANY_ID,
    advertising_data,
    looks_like_nuki,
    new_state_flag,
)
from ble.nuki.gatt import KEYTURNER_SERVICE
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
