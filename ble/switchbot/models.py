"""SwitchBot Lock models: what differs between the original SwitchBot Lock and the Lock Pro,
pure.

The original Lock (device type ``o``, 0x6F) is the one SwitchBot documents
(OpenWonderLabs/SwitchBotAPI-BLE, ``devicetypes/lock.md``): a 2-byte Lock Info (status in
bits 6-4), manufacturer data of 10 bytes, the battery in the scan response. The Lock Pro
(device type ``$``, 0x24) is not in the published document; its layout here is the one
pySwitchbot, written against real Lock Pros, reads and sends (read, not copied): a 6-byte
Lock Info (status in bits 6-3 of byte 0, the door in bit 4 of byte 1, the alarms in byte 5),
manufacturer data of 12 bytes carrying the battery itself, and its own command bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SwitchBotModel(enum.Enum):
    LOCK = "lock"
    LOCK_PRO = "lock-pro"


@dataclass(frozen=True, slots=True)
class ModelTraits:
    #: Bits 6-0 of the scan response's service data, byte 0.
    device_type: int
    lock_info: bytes
    notifications: bytes
    #: The lock-action command without its last (action) byte.
    action_prefix: bytes
    #: Bytes of Lock Info in a reply or notification body.
    info_bytes: int
    #: Bytes of manufacturer data after the company ID.
    manufacturer_bytes: int


TRAITS: dict[SwitchBotModel, ModelTraits] = {
    SwitchBotModel.LOCK: ModelTraits(
        device_type=0x6F,
        lock_info=bytes.fromhex("0f4f8101"),
        notifications=bytes.fromhex("0e01001e00008101"),
        action_prefix=bytes.fromhex("0f4e010110"),
        info_bytes=2,
        manufacturer_bytes=10,
    ),
    SwitchBotModel.LOCK_PRO: ModelTraits(
        device_type=0x24,
        lock_info=bytes.fromhex("0f4f8104"),
        notifications=bytes.fromhex("0e01001e00008104"),
        action_prefix=bytes.fromhex("0f4e01010000"),
        info_bytes=6,
        manufacturer_bytes=12,
    ),
}


def model_of_device_type(device_type: int) -> SwitchBotModel | None:
    for model, traits in TRAITS.items():
        if traits.device_type == device_type & 0x7F:
            return model
    return None
