"""Nuki Smart Lock models and what tells them apart on the air and in their config (pure).

What differs between the generations a gateway meets, from public evidence:

* **The iBeacon's measured-power byte.** Smart Lock 2.0 sends 0xC4 (-60 dBm), 3.0 and later
  0xC8 (-56 dBm); the lowest bit is the "new state available" flag, so 0xC5 and 0xC9 mean a
  change is waiting to be read (observed on real locks: RaspiNukiBridge issue 15, a 3.0 Pro
  sending 0xC8 and "odd means a new state"; the NukiBleEsp32 library and pyNukiBT test
  ``power & 0x01``).
* **Config's device type**, appended by 3.0 and later firmware: 0 for Smart Lock 1.0/2.0, 4
  for 3.0/4.0 (pyNukiBT's ``NukiDeviceType``). Firmware versions start with the generation.
* **Message sizes.** Current firmware appends six status bytes to Keyturner States (27
  bytes, an 81-byte encrypted message), and 4.0 appends keypad 2.0 and Matter status to
  Config (78 bytes, a 132-byte message), fields as pyNukiBT parses them
  (``KeyturnerStates``, ``Config``); 81 and 132 bytes are the message sizes real 2.0 and
  4.0 locks were seen to send in one notification (issue 13).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class NukiModel(enum.Enum):
    SMART_LOCK_2 = "2.0"
    SMART_LOCK_3 = "3.0"
    SMART_LOCK_4 = "4.0"


@dataclass(frozen=True, slots=True)
class ModelTraits:
    """``beacon_power``: the measured-power byte with no news (even); the lock sets its
    lowest bit while a new state is waiting. ``device_type``: Config's trailing byte, or
    None when the firmware does not send it."""

    beacon_power: int
    device_type: int | None
    firmware: tuple[int, int, int]
    hardware: tuple[int, int]
    # Config sends keypad 2.0 and Matter status after the device type.
    config_matter: bool = False


# Bytes current firmware appends to the 21 of Keyturner States: remote access status, BLE
# strength, Wi-Fi strength, Wi-Fi status, MQTT status, Thread status.
STATES_TAIL = bytes([0, 0xC4, 0, 0, 0, 0])

TRAITS: dict[NukiModel, ModelTraits] = {
    NukiModel.SMART_LOCK_2: ModelTraits(0xC4, None, (2, 12, 6), (4, 1)),
    NukiModel.SMART_LOCK_3: ModelTraits(0xC8, 4, (3, 8, 2), (6, 0)),
    NukiModel.SMART_LOCK_4: ModelTraits(0xC8, 4, (4, 2, 10), (9, 0), config_matter=True),
}
