"""Bumble's discovered GATT proxies to bleak's ``BleakGATTServiceCollection``: pure mapping.

Each bleak object keeps its Bumble proxy in ``.obj``, which the client uses to read, write
and subscribe. Characteristic properties follow the Core Spec Vol 3, Part G, §3.3.1.1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bumble.core import UUID
from bumble.gatt_client import ServiceProxy

_PROPERTY_NAMES: tuple[tuple[int, CharacteristicPropertyName], ...] = (
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)


def bleak_uuid(value: UUID) -> str:
    """A Bumble UUID as bleak writes UUIDs: 128-bit, lower case, with dashes."""
    return str(uuid.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


def property_names(properties: int) -> list[CharacteristicPropertyName]:
    return [name for bit, name in _PROPERTY_NAMES if properties & bit]


def service_collection(
    services: Iterable[ServiceProxy], max_write_without_response: Callable[[], int]
) -> BleakGATTServiceCollection:
    """Build bleak's collection from services whose characteristics and descriptors have
    been discovered. ``max_write_without_response`` is read live (the MTU can change)."""
    collection = BleakGATTServiceCollection()
    for service in services:
        bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
        collection.add_service(bleak_service)
        for characteristic in service.characteristics:
            bleak_characteristic = BleakGATTCharacteristic(
                characteristic,
                characteristic.handle,
                bleak_uuid(characteristic.uuid),
                property_names(int(characteristic.properties)),
                max_write_without_response,
                bleak_service,
            )
            collection.add_characteristic(bleak_characteristic)
            for descriptor in characteristic.descriptors:
                collection.add_descriptor(
                    BleakGATTDescriptor(
                        descriptor,
                        descriptor.handle,
                        bleak_uuid(descriptor.type),
                        bleak_characteristic,
                    )
                )
    return collection
