"""bleak's scanner backend on Bumble: advertisements from a :class:`BumbleAdapter` become
bleak ``BLEDevice`` and ``AdvertisementData`` objects.

Use it through bleak's public API::

    device = await BleakScanner.find_device_by_address(address, backend=BumbleScanner)
    found = await BleakScanner.discover(timeout=1.0, backend=BumbleScanner, return_adv=True)

A specific adapter can be passed with ``bumble_adapter=adapter``; otherwise the default one
(:func:`ble.bumble_backend.adapter.set_default_adapter`) is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bumble import hci
from bumble.device import Advertisement

from ble.bumble_backend.adapter import BumbleAdapter, resolve_adapter
from ble.bumble_backend.advertising import parse_advertisement

# bleak has no "not available" RSSI; -127 dBm is the floor HCI reports use for "no signal".
NO_RSSI = -127


@dataclass(frozen=True, slots=True)
class BumbleDeviceDetails:
    """``BLEDevice.details`` for this backend: the advertiser's address with its type.

    Not a ``dict``, so bleak-retry-connector never mistakes it for a BlueZ object path.
    """

    address: hci.Address
    connectable: bool


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    fields = parse_advertisement(advertisement.data.ad_structures)
    tx_power = fields.tx_power
    if advertisement.tx_power != Advertisement.TX_POWER_NOT_AVAILABLE and tx_power is None:
        tx_power = advertisement.tx_power
    rssi = advertisement.rssi
    if rssi == Advertisement.RSSI_NOT_AVAILABLE:
        rssi = NO_RSSI
    return AdvertisementData(
        local_name=fields.local_name,
        manufacturer_data=dict(fields.manufacturer_data),
        service_data=dict(fields.service_data),
        service_uuids=list(fields.service_uuids),
        tx_power=tx_power,
        rssi=rssi,
        platform_data=(advertisement,),
    )


class BumbleScanner(BaseBleakScanner):
    """A bleak scanner backend that listens on a :class:`BumbleAdapter`."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        bumble_adapter: BumbleAdapter | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode == "active"
        self._explicit_adapter = bumble_adapter
        self._adapter: BumbleAdapter | None = None

    async def start(self) -> None:
        adapter = resolve_adapter(self._explicit_adapter)
        self.seen_devices = {}
        adapter.add_advertisement_listener(self, self._on_advertisement)
        try:
            await adapter.acquire_scan(self, active=self._active)
        except BaseException:
            adapter.remove_advertisement_listener(self)
            raise
        self._adapter = adapter

    async def stop(self) -> None:
        adapter, self._adapter = self._adapter, None
        if adapter is None:
            return
        adapter.remove_advertisement_listener(self)
        await adapter.release_scan(self)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        adv = advertisement_data(advertisement)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        address = advertisement.address.to_string(False)
        # An advertisement without a name (one not merged with its scan response) must not
        # erase a name already seen.
        previous = self.seen_devices.get(address)
        name = adv.local_name or (previous[0].name if previous else None)
        device = self.create_or_update_device(
            address,
            address,
            name,
            BumbleDeviceDetails(advertisement.address, advertisement.is_connectable),
            adv,
        )
        self.call_detection_callbacks(device, adv)
