"""The Bumble adapter: one Bumble ``Device`` acting as the BLE central for the bleak backend.

A :class:`BumbleAdapter` owns the HCI transport (a USB dongle, a serial or TCP HCI, or a
virtual controller on an in-process ``LocalLink``), the Bumble host stack on top of it, and
what the scanner and clients share: the scan (one per controller, reference-counted across
scanners), the single pending LE connection a controller allows, and the address types seen
in advertisements (bleak addresses are bare strings; Bumble needs public/random).

Calling code creates one adapter, starts it, and makes it the default for the backend::

    adapter = BumbleAdapter.for_transport("usb:0")
    await adapter.start()
    set_default_adapter(adapter)        # or: with use_adapter(adapter): ...
    ...
    await adapter.close()

Errors are bleak's, as every bleak backend's are: an adapter that cannot be opened raises
:class:`bleak.exc.BleakBluetoothNotAvailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakError,
)
from bumble import hci
from bumble.controller import Controller
from bumble.device import Advertisement, Device
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, TransportSink, TransportSource

from ble.bumble_backend.host import QuietHost

_LOGGER = logging.getLogger(__name__)

AdvertisementListener = Callable[[Advertisement], None]

# Bounds how long closing may take, so a wedged dongle cannot hang the gateway's shutdown.
_CLOSE_STEP_TIMEOUT = 5.0
# A BLE connection needs at least the default ATT MTU; 247 fits a Data Length Extension PDU.
DEFAULT_ATT_MTU = 247


@dataclass(frozen=True, slots=True)
class _HciEndpoint:
    source: TransportSource
    sink: TransportSink
    close: Callable[[], Awaitable[None]]


async def _nothing_to_close() -> None:
    return None


class BumbleAdapter:
    """A Bumble central: start it, use it through bleak, close it.

    Create with :meth:`for_transport` (a Bumble transport moniker such as ``usb:0``,
    ``serial:/dev/ttyACM0`` or ``tcp-client:127.0.0.1:9000``) or :meth:`for_controller`
    (a Bumble ``Controller`` in this process, e.g. on a ``LocalLink``).
    """

    def __init__(
        self,
        opener: Callable[[], Awaitable[_HciEndpoint]],
        *,
        description: str,
        address: str | None = None,
        att_mtu: int = DEFAULT_ATT_MTU,
    ) -> None:
        self._opener = opener
        self.description = description
        self._address = address
        self.att_mtu = att_mtu
        self._endpoint: _HciEndpoint | None = None
        self._device: Device | None = None
        self._listeners: dict[object, AdvertisementListener] = {}
        self._scan_users: dict[object, bool] = {}
        self._scan_lock = asyncio.Lock()
        self._scanning_active: bool | None = None
        self._address_types: dict[str, hci.Address] = {}
        self.connect_lock = asyncio.Lock()
        """Held while an LE connection is being created: a controller allows only one."""

    # -- construction -----------------------------------------------------------------

    @classmethod
    def for_transport(
        cls, moniker: str, *, address: str | None = None, att_mtu: int = DEFAULT_ATT_MTU
    ) -> BumbleAdapter:
        """An adapter on any Bumble transport: ``usb:0``, ``serial:...``, ``tcp-client:...``.

        ``address`` is the central's random static address; by default the stack picks one.
        """

        async def opener() -> _HciEndpoint:
            try:
                transport = await open_transport(moniker)
            except Exception as exc:
                raise BleakBluetoothNotAvailableError(
                    f"cannot open the Bluetooth adapter {moniker!r}: {exc}",
                    BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
                ) from exc
            return _HciEndpoint(transport.source, transport.sink, transport.close)

        return cls(opener, description=moniker, address=address, att_mtu=att_mtu)

    @classmethod
    def for_controller(
        cls,
        controller: Controller,
        *,
        address: str | None = None,
        att_mtu: int = DEFAULT_ATT_MTU,
    ) -> BumbleAdapter:
        """An adapter whose host talks HCI directly to a Bumble ``Controller`` in-process."""

        async def opener() -> _HciEndpoint:
            return _HciEndpoint(controller, AsyncPipeSink(controller), _nothing_to_close)

        return cls(
            opener, description=f"controller {controller.name}", address=address, att_mtu=att_mtu
        )

    # -- lifecycle --------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._device is not None

    @property
    def device(self) -> Device:
        """The Bumble central ``Device``; raises if the adapter is not started."""
        if self._device is None:
            raise BleakBluetoothNotAvailableError(
                f"the Bumble adapter {self.description!r} is not started",
                BleakBluetoothNotAvailableReason.POWERED_OFF,
            )
        return self._device

    @property
    def address(self) -> str:
        """The central's own address, in bleak's form."""
        return str(self.device.random_address.to_string(False))

    async def start(self) -> None:
        if self._device is not None:
            return
        endpoint = await self._opener()
        try:
            host = QuietHost(controller_source=endpoint.source, controller_sink=endpoint.sink)
            device = Device(
                name="threshold",
                address=hci.Address(self._address) if self._address else None,
                host=host,
            )
            await device.power_on()
        except BaseException as exc:
            await endpoint.close()
            if isinstance(exc, Exception):
                raise BleakBluetoothNotAvailableError(
                    f"the Bluetooth controller at {self.description!r} did not start: {exc}",
                    BleakBluetoothNotAvailableReason.UNKNOWN,
                ) from exc
            raise
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        self._endpoint = endpoint
        self._device = device

    async def close(self) -> None:
        """Stop scanning, drop every connection and release the transport. Never raises."""
        device, endpoint = self._device, self._endpoint
        self._device = self._endpoint = None
        self._listeners.clear()
        self._scan_users.clear()
        self._scanning_active = None
        self._address_types.clear()
        if device is None or endpoint is None:
            return
        steps: list[Callable[[], Awaitable[Any]]] = []
        if device.is_scanning:
            steps.append(device.stop_scanning)
        for connection in list(device.connections.values()):
            steps.append(
                functools.partial(
                    connection.disconnect, hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR
                )
            )
        steps += [device.power_off, endpoint.close]
        for step in steps:
            try:
                async with asyncio.timeout(_CLOSE_STEP_TIMEOUT):
                    await step()
            except Exception:
                _LOGGER.warning("closing the Bumble adapter: a step failed", exc_info=True)

    async def __aenter__(self) -> BumbleAdapter:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- scanning, shared by every scanner ----------------------------------------------

    def add_advertisement_listener(self, key: object, listener: AdvertisementListener) -> None:
        self._listeners[key] = listener

    def remove_advertisement_listener(self, key: object) -> None:
        self._listeners.pop(key, None)

    async def acquire_scan(self, key: object, *, active: bool) -> None:
        """Make sure the controller scans while ``key`` holds the scan (active wins)."""
        async with self._scan_lock:
            self._scan_users[key] = active
            await self._apply_scan()

    async def release_scan(self, key: object) -> None:
        async with self._scan_lock:
            self._scan_users.pop(key, None)
            if self._device is not None:
                await self._apply_scan()

    async def _apply_scan(self) -> None:
        device = self.device
        wanted: bool | None = any(self._scan_users.values()) if self._scan_users else None
        if wanted == self._scanning_active:
            return
        if self._scanning_active is not None:
            await device.stop_scanning()
            self._scanning_active = None
        if wanted is not None:
            # Duplicates are not filtered: bleak reports RSSI and data changes.
            await device.start_scanning(active=wanted, filter_duplicates=False)
            self._scanning_active = wanted

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        self._address_types[advertisement.address.to_string(False)] = advertisement.address
        for listener in list(self._listeners.values()):
            try:
                listener(advertisement)
            except Exception:
                _LOGGER.exception("an advertisement listener failed")

    # -- addresses ----------------------------------------------------------------------

    def peer_address(self, address: str) -> hci.Address:
        """The Bumble address (with its type) for a bleak address string.

        An address seen in an advertisement keeps the type it was advertised with.
        Otherwise a ``/P`` suffix means public; anything else is taken as random, which
        is what most BLE peripherals (Nuki locks included) use.
        """
        key = address.upper()
        if key in self._address_types:
            return self._address_types[key]
        try:
            return hci.Address(key)
        except Exception as exc:
            raise BleakError(f"{address!r} is not a Bluetooth address") from exc


_default_adapter: BumbleAdapter | None = None


def set_default_adapter(adapter: BumbleAdapter | None) -> None:
    """Make ``adapter`` the one :class:`BumbleScanner` and :class:`BumbleClient` use when
    they are not given ``bumble_adapter=``. One process, one radio: this is process-wide."""
    global _default_adapter
    _default_adapter = adapter


@contextlib.contextmanager
def use_adapter(adapter: BumbleAdapter) -> Iterator[BumbleAdapter]:
    """Make ``adapter`` the default within a ``with`` block, restoring the previous one."""
    previous = _default_adapter
    set_default_adapter(adapter)
    try:
        yield adapter
    finally:
        set_default_adapter(previous)


def resolve_adapter(explicit: BumbleAdapter | None) -> BumbleAdapter:
    """The adapter to use: the one passed explicitly, else the default; started or raise."""
    adapter = explicit if explicit is not None else _default_adapter
    if adapter is None:
        raise BleakBluetoothNotAvailableError(
            "no Bumble adapter is configured: call ble.bumble_backend.set_default_adapter() "
            "or pass bumble_adapter=",
            BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
        )
    adapter.device  # noqa: B018 (raises a clear error when the adapter is not started)
    return adapter
