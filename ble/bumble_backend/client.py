"""bleak's client backend on Bumble: connect, discover, read, write and subscribe over a
:class:`~ble.bumble_backend.adapter.BumbleAdapter`.

Use it through bleak's public API, or through bleak-retry-connector unchanged::

    client = BleakClient(device, backend=BumbleClient)
    client = await establish_connection(
        BleakClientWithServiceCache, device, "front door", backend=BumbleClient
    )

``bumble_adapter=adapter`` selects an adapter; otherwise the default one is used.

Behaviour worth knowing:

- The connect timeout is the smaller of the constructor's ``timeout`` and the ``timeout``
  passed to ``connect()`` (bleak-retry-connector passes 20 s), and covers the whole set-up:
  waiting for the controller, the link, the MTU exchange and service discovery. When it
  expires ``connect`` raises :class:`TimeoutError`, which bleak-retry-connector reports as
  "device not found".
- The disconnected callback runs once per connection, however it ended (the peer left,
  the link timed out, or ``disconnect()`` was called), as bleak's BlueZ backend does.
- An operation interrupted by link loss raises :class:`bleak.exc.BleakError` whose message
  contains "Disconnected"; an ATT error response raises
  :class:`bleak.exc.BleakGATTProtocolError` with the ATT error code.
- ``start_notify`` prefers notifications when a characteristic offers both; pass
  ``force_indicate=True`` for indications. Callbacks run on the event loop, before an
  indication is confirmed.
- ``pair``/``unpair`` (SMP bonding) are not supported and raise ``BleakError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.device import Connection, Peer
from bumble.gatt import GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR
from bumble.gatt_client import CharacteristicProxy
from bumble.utils import EventWatcher

from ble.bumble_backend.adapter import BumbleAdapter, resolve_adapter
from ble.bumble_backend.scanner import BumbleDeviceDetails
from ble.bumble_backend.services import service_collection

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

# Bumble answers a connect timeout by cancelling the pending connection; a controller that
# never confirms the cancel must not hold connect() beyond this extra margin.
_CANCEL_MARGIN = 2.0
_ATT_HEADER = 3
_DISCONNECT_TIMEOUT = 5.0


class BumbleClient(BaseBleakClient):
    """A bleak client backend on a :class:`BumbleAdapter`."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        services: set[str] | None = None,
        bumble_adapter: BumbleAdapter | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._details: BumbleDeviceDetails | None = None
        self._name = self.address
        if isinstance(address_or_ble_device, BLEDevice):
            if isinstance(address_or_ble_device.details, BumbleDeviceDetails):
                self._details = address_or_ble_device.details
            self._name = address_or_ble_device.name or self.address
        self._explicit_adapter = bumble_adapter
        self._service_filter = services
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._watcher: EventWatcher | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}
        self._established = False
        self._link_lost: asyncio.Future[None] | None = None
        self._abandoned: set[asyncio.Future[Any]] = set()
        # Our own copies: bleak's base class keeps these in attributes of its own.
        self._connect_timeout = timeout
        self._on_unsolicited_disconnect = disconnected_callback

    # -- properties ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        connection = self._connection
        return int(connection.att_mtu) if connection is not None else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # -- connection ---------------------------------------------------------------------

    def set_disconnected_callback(self, callback: Callable[[], None] | None, **kwargs: Any) -> None:
        super().set_disconnected_callback(callback, **kwargs)
        self._on_unsolicited_disconnect = callback

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if pair:
            raise BleakError("the Bumble backend does not support pairing (SMP bonding)")
        if self._connection is not None:
            return
        self.services = None
        adapter = resolve_adapter(self._explicit_adapter)
        timeout = min(float(kwargs.get("timeout", self._connect_timeout)), self._connect_timeout)
        peer_address = (
            self._details.address
            if self._details is not None
            else adapter.peer_address(self.address)
        )
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout(timeout + _CANCEL_MARGIN):
                await self._connect(adapter, peer_address, deadline)
        except TimeoutError:
            await self._abandon()
            raise TimeoutError(
                f"{self.address}: no connection within {timeout:.1f} s (device not found)"
            ) from None
        except BaseException:
            await self._abandon()
            raise

    async def _connect(self, adapter: BumbleAdapter, address: hci.Address, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        async with adapter.connect_lock:
            remaining = max(deadline - loop.time(), 0.001)
            attempt = asyncio.ensure_future(adapter.device.connect(address, timeout=remaining))
            try:
                connection = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # The caller gave up while the controller still tries to connect: withdraw
                # the attempt, or the controller stays busy and connects later, unasked.
                await asyncio.shield(self._withdraw(adapter, attempt))
                raise
            except core.TimeoutError as exc:
                raise TimeoutError(str(exc)) from exc
            except (core.BaseBumbleError, hci.HCI_Error) as exc:
                raise BleakError(f"{self.address}: connection failed: {exc}") from exc
        self._attach(connection)
        async with asyncio.timeout_at(deadline):
            await self._set_up_gatt(adapter, connection)

    async def _withdraw(self, adapter: BumbleAdapter, attempt: asyncio.Future[Connection]) -> None:
        try:
            async with asyncio.timeout(_CANCEL_MARGIN):
                if not attempt.done():
                    await adapter.device.cancel_connection()  # type: ignore[no-untyped-call]
                connection = await attempt
        except Exception as exc:
            _LOGGER.debug("%s: connection attempt withdrawn (%s)", self.address, exc)
            if not attempt.done():
                attempt.cancel()
            return
        # The link came up just as it was withdrawn; nobody owns it, so it goes.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CANCEL_MARGIN):
                await connection.disconnect()

    def _attach(self, connection: Connection) -> None:
        self._connection = connection
        self._peer = Peer(connection)
        self._link_lost = asyncio.get_running_loop().create_future()
        watcher = EventWatcher()
        watcher.on(connection, connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._watcher = watcher

    async def _set_up_gatt(self, adapter: BumbleAdapter, connection: Connection) -> None:
        peer = self._require_peer()
        if adapter.att_mtu > att.ATT_DEFAULT_MTU:
            await self._gatt("MTU exchange", peer.request_mtu(adapter.att_mtu))
        uuids = [core.UUID(u) for u in sorted(self._service_filter)] if self._service_filter else []
        await self._gatt("service discovery", peer.discover_services(uuids))
        for service in peer.services:
            await self._gatt("service discovery", peer.discover_characteristics(service=service))
            for characteristic in service.characteristics:
                await self._gatt(
                    "service discovery", peer.discover_descriptors(characteristic=characteristic)
                )
        self.services = service_collection(peer.services, self._max_write_without_response)
        self._established = True
        _LOGGER.debug("%s: connected, %d services", self.address, len(peer.services))

    def _max_write_without_response(self) -> int:
        return self.mtu_size - _ATT_HEADER

    async def _abandon(self) -> None:
        """Undo a half-made connection after a failed or cancelled connect."""
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(_CANCEL_MARGIN):
                await connection.disconnect()
        except Exception:
            _LOGGER.debug("%s: dropping a half-made connection failed", self.address)
        self._detach()

    def _on_disconnection(self, reason: int) -> None:
        _LOGGER.debug("%s: disconnected (HCI reason 0x%02X)", self.address, reason)
        was_connected = self._established
        self._detach()
        callback = self._on_unsolicited_disconnect
        if was_connected and callback is not None:
            try:
                callback()
            except Exception:
                _LOGGER.exception("%s: the disconnected callback failed", self.address)

    def _detach(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        self._watcher = None
        self._established = False
        if self._link_lost is not None and not self._link_lost.done():
            self._link_lost.set_result(None)
        self._link_lost = None
        self._connection = None
        self._peer = None
        self._subscribers.clear()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(_DISCONNECT_TIMEOUT):
                await connection.disconnect()
        except (TimeoutError, core.BaseBumbleError, hci.HCI_Error) as exc:
            # Already gone (the peer left at the same moment), or a controller that does
            # not answer: either way this client is done with the link.
            _LOGGER.debug("%s: disconnect: %r", self.address, exc)
            if self._connection is connection:
                self._on_disconnection(hci.HCI_CONNECTION_TIMEOUT_ERROR)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("the Bumble backend does not support pairing (SMP bonding)")

    async def unpair(self) -> None:
        raise BleakError("the Bumble backend does not support pairing (SMP bonding)")

    # -- GATT operations ----------------------------------------------------------------

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: Not connected")
        return self._peer

    async def _gatt(self, what: str, operation: Coroutine[Any, Any, _T]) -> _T:
        """Run a Bumble GATT operation, translating its failures into bleak's exceptions.

        The operation races the link: Bumble fails only the ATT request in flight when the
        link drops, and one queued behind it would wait out the 30 s ATT timeout.

        A caller that gives up (cancellation, its own timeout) does not cancel the ATT
        request: ATT allows one request at a time, and the late response would otherwise be
        taken as the answer to the next request. The request finishes in the background
        (response, link loss or the ATT timeout) and the next one waits for it.
        """
        lost = self._link_lost
        if lost is None or lost.done():
            operation.close()
            raise BleakError(f"{self.address}: {what} failed: Not connected")
        task = asyncio.ensure_future(operation)
        racers: set[asyncio.Future[Any]] = {task, lost}
        try:
            await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if not task.done():
                self._abandoned.add(task)
                task.add_done_callback(self._forget_abandoned)
            raise
        if not task.done():
            task.cancel()
            raise BleakError(f"{self.address}: {what} failed: Disconnected")
        try:
            return task.result()
        except asyncio.CancelledError:
            # Bumble cancels the request in flight when the link goes down.
            raise BleakError(f"{self.address}: {what} failed: Disconnected") from None
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except core.TimeoutError as exc:
            raise TimeoutError(f"{self.address}: {what} timed out") from exc
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            raise BleakError(f"{self.address}: {what} failed: {exc}") from exc

    def _forget_abandoned(self, task: asyncio.Future[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.debug("%s: an abandoned GATT request failed: %s", self.address, error)

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        peer = self._require_peer()
        if use_cached and characteristic.handle in peer.gatt_client.cached_values:
            return bytearray(peer.gatt_client.cached_values[characteristic.handle][1])
        value = await self._gatt("read", peer.read_value(characteristic.obj))
        return bytearray(value)

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        peer = self._require_peer()
        if use_cached and descriptor.handle in peer.gatt_client.cached_values:
            return bytearray(peer.gatt_client.cached_values[descriptor.handle][1])
        value = await self._gatt("descriptor read", peer.read_value(descriptor.handle))
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_peer()
        await self._gatt(
            "write", peer.write_value(characteristic.obj, bytes(data), with_response=response)
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._require_peer()
        await self._gatt(
            "descriptor write", peer.write_value(descriptor.handle, bytes(data), with_response=True)
        )

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        peer = self._require_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        if characteristic.handle in self._subscribers:
            raise BleakError(f"{self.address}: notifications already started on {characteristic}")
        if not {"notify", "indicate"} & set(characteristic.properties):
            raise BleakError(f"{self.address}: {characteristic} cannot notify or indicate")
        if proxy.get_descriptor(GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR) is None:
            raise BleakError(f"{self.address}: {characteristic} has no CCCD to subscribe with")

        def subscriber(value: bytes) -> None:
            try:
                callback(bytearray(value))
            except Exception:
                _LOGGER.exception("%s: a notification callback failed", self.address)

        self._subscribers[characteristic.handle] = subscriber
        try:
            await self._gatt(
                "subscribe",
                peer.gatt_client.subscribe(
                    proxy, subscriber, prefer_notify=not kwargs.get("force_indicate", False)
                ),
            )
        except BaseException:
            self._subscribers.pop(characteristic.handle, None)
            raise

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        if subscriber is None:
            return
        await self._gatt(
            "unsubscribe", peer.gatt_client.unsubscribe(characteristic.obj, subscriber)
        )

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<BumbleClient {self.address} {state}>"
