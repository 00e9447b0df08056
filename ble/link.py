"""The vendor-neutral BLE link to a smart lock: what every vendor's driver needs from bleak.

A vendor's driver (:mod:`ble.nuki.driver`) names a :class:`Channel` (the characteristic it
writes and is indicated on, and how its indications become frames) and hands the link pure
exchanges (:class:`ble.exchange.Exchange`); the link does the rest:

* **one connection per physical lock**: every :class:`LockLink` for one address, in one event
  loop, shares one connection (a lock holds one connection to a central anyway), opened with
  bleak-retry-connector's ``establish_connection`` (typed errors, backoff, service cache);
* **one operation at a time**: one :class:`asyncio.Lock` per physical lock, so two commands
  from two drivers never interleave on the air (:meth:`LockLink.operation`);
* **subscriptions on every connect**: locks forget them between connections (a subscription
  is a write to the characteristic's Client Characteristic Configuration descriptor,
  Bluetooth Core Specification v5.3, Vol 3, Part G, §3.3.3.3; replies then arrive as
  Characteristic Value Indications, §4.11);
* **idle disconnect** after ``idle_disconnect_s`` without work: every connected second costs
  the lock's batteries;
* **bounded steps**: scan, connect, each write and each reply have their own timeout; a
  step that overruns raises :class:`ble.errors.StepTimedOut`, a dropped link
  :class:`ble.errors.LinkLost`, an unreadable frame the framer's
  :class:`ble.errors.LockProtocolError`, in order, where the reply would have been;
* **one exchange loop** (:meth:`LockLink.run`): writes what the exchange asks, feeds it each
  frame, hands every other event to the driver, and records whether a frame marked as the
  point of no return (:attr:`ble.exchange.SendFrame.is_action`) has left.

What a lost action *means* (read the state once, never send it again) is the driver's to
decide: the link only reports, in :class:`ExchangeProgress`, whether the action left.

About 500 lines: the connection, the operation lock and the exchange loop share one
connection's lifetime, and kept together their ordering rules are read in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError, BleakError
from bleak_retry_connector import BleakNotFoundError, establish_connection

from ble.errors import (
    LinkLost,
    LockConnectionFailed,
    LockError,
    LockNotFound,
    LockProtocolError,
    LockTimeout,
    NoBluetoothAdapter,
    StepTimedOut,
)
from ble.exchange import Exchange, SendFrame

logger = logging.getLogger(__name__)

# Bounds the goodbye to a lock; a disconnect that hangs must not hold the next operation.
DISCONNECT_S = 5.0


@dataclass(frozen=True, slots=True)
class BleakTransport:
    """Which bleak backend to use: the platform's (default) or another, such as the Bumble
    backend, with the keyword arguments it needs (e.g. ``{"bumble_adapter": adapter}``)."""

    scanner_backend: type[Any] | None = None
    client_backend: type[Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def scanner_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.options)
        if self.scanner_backend is not None:
            kwargs["backend"] = self.scanner_backend
        return kwargs

    def client_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.options)
        if self.client_backend is not None:
            kwargs["backend"] = self.client_backend
        return kwargs


@dataclass(frozen=True, slots=True)
class LinkTimeouts:
    """Seconds, one bound per step. A vendor extends this with its own (a motor's run)."""

    scan_s: float = 8.0
    connect_s: float = 12.0
    step_s: float = 4.0
    idle_disconnect_s: float = 3.0
    connect_attempts: int = 2

    def reach_s(self) -> float:
        """The longest it takes to reach a lock: scan (plus bleak's own margin) and connect."""
        return self.scan_s + 2.0 + self.connect_s


class Framer(Protocol):
    """Turns a characteristic's indications back into the vendor's frames (pure).

    ``feed`` raises a :class:`ble.errors.LockProtocolError` for garbage and then starts
    afresh; ``reset`` forgets a partial frame (a new connection begins clean)."""

    def feed(self, piece: bytes) -> list[bytes]: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Channel:
    """Where a vendor's frames travel: the characteristic indicated (or notified), the one
    written (the same unless ``write_characteristic`` names another, as SwitchBot's TX/RX
    pair does), whether writes ask for a response, and a factory for the framer that
    reassembles its indications."""

    characteristic: str
    framer: Callable[[], Framer]
    write_characteristic: str | None = None
    write_response: bool = True

    @property
    def written(self) -> str:
        return self.write_characteristic or self.characteristic


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One advertisement heard, without bleak's types, for a vendor to recognise its locks."""

    address: str
    name: str | None
    service_uuids: tuple[str, ...]
    manufacturer_data: Mapping[int, bytes]
    rssi: int | None
    service_data: Mapping[str, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, device: BLEDevice, adv: AdvertisementData) -> Advertisement:
        return cls(
            address=device.address.upper(),
            name=adv.local_name or device.name,
            service_uuids=tuple(adv.service_uuids),
            manufacturer_data=dict(adv.manufacturer_data),
            rssi=adv.rssi,
            service_data=dict(adv.service_data),
        )


def connection_error(exc: BaseException, address: str) -> LockError:
    """The typed error, with a message a homeowner can act on, for a failure to reach a lock."""
    if isinstance(exc, LockError):
        return exc
    if isinstance(exc, BleakNotFoundError):
        return LockNotFound(f"the lock {address} is out of range or switched off")
    text = str(exc)
    no_radio = isinstance(exc, BleakBluetoothNotAvailableError) or (
        isinstance(exc, OSError) and not isinstance(exc, TimeoutError)
    )
    if no_radio or "adapter" in text.lower():
        return NoBluetoothAdapter(
            f"Bluetooth is not available on this computer ({type(exc).__name__}: {text}); "
            "plug in a Bluetooth adapter and check that BlueZ (bluetoothd) is running"
        )
    if isinstance(exc, TimeoutError):
        return LockTimeout(f"the lock {address} did not answer in time; is it in range?")
    return LockConnectionFailed(
        f"could not connect to the lock {address} ({type(exc).__name__}: {text}); move the "
        "gateway closer or check the lock's batteries"
    )


async def find_device(address: str, transport: BleakTransport, scan_s: float) -> BLEDevice:
    try:
        async with asyncio.timeout(scan_s + 2.0):
            device = await BleakScanner.find_device_by_address(
                address, timeout=scan_s, **transport.scanner_kwargs()
            )
    except (BleakError, OSError, TimeoutError) as exc:
        raise connection_error(exc, address) from exc
    if device is None:
        raise LockNotFound(
            f"no lock with address {address} answered within {scan_s:g} s: it is out of "
            "range, its batteries are empty, or the address is wrong"
        )
    return device


async def discover(transport: BleakTransport, scan_s: float) -> list[Advertisement]:
    """Every device advertising within ``scan_s``, as last heard."""
    try:
        async with asyncio.timeout(scan_s + 2.0):
            found = await BleakScanner.discover(
                timeout=scan_s, return_adv=True, **transport.scanner_kwargs()
            )
    except (BleakError, OSError, TimeoutError) as exc:
        raise connection_error(exc, "scan") from exc
    return [Advertisement.of(device, adv) for device, adv in found.values()]


class AdvertisementWatch:
    """A scanner left running, calling back on every advertisement: how a driver notices a
    change nobody asked for without holding a connection."""

    def __init__(self, scanner: BleakScanner) -> None:
        self._scanner = scanner

    @classmethod
    async def start(
        cls,
        transport: BleakTransport,
        callback: Callable[[Advertisement], None],
        limit_s: float,
    ) -> AdvertisementWatch:
        def heard(device: BLEDevice, adv: AdvertisementData) -> None:
            callback(Advertisement.of(device, adv))

        scanner = BleakScanner(heard, **transport.scanner_kwargs())
        try:
            async with asyncio.timeout(limit_s):
                await scanner.start()
        except (BleakError, OSError, TimeoutError) as exc:
            raise connection_error(exc, "scan") from exc
        return cls(scanner)

    async def stop(self) -> None:
        with contextlib.suppress(BleakError, OSError, TimeoutError):
            async with asyncio.timeout(DISCONNECT_S):
                await self._scanner.stop()


class _Connection:
    """The bleak connection to one lock, on one channel at a time, with its frame stream."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.channel: Channel | None = None
        self.client: BleakClient | None = None
        # A frame, an unreadable one (its error), or None when the link went away.
        self.frames: asyncio.Queue[bytes | LockProtocolError | None] = asyncio.Queue()
        self._framer: Framer | None = None

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    def on(self, channel: Channel) -> bool:
        return self.connected and self.channel == channel

    async def open(
        self, channel: Channel, transport: BleakTransport, timeouts: LinkTimeouts, name: str
    ) -> None:
        device = await find_device(self.address, transport, timeouts.scan_s)
        try:
            async with asyncio.timeout(timeouts.connect_s):
                client = await establish_connection(
                    BleakClient,
                    device,
                    name,
                    disconnected_callback=self._on_disconnect,
                    max_attempts=timeouts.connect_attempts,
                    **transport.client_kwargs(),
                )
        except (BleakError, OSError, TimeoutError) as exc:
            raise connection_error(exc, self.address) from exc
        self.client = client
        self.channel = channel
        self._framer = channel.framer()
        self.frames = asyncio.Queue()
        try:
            async with asyncio.timeout(timeouts.step_s):
                await client.start_notify(channel.characteristic, self._on_indication)
        except (BleakError, OSError, TimeoutError) as exc:
            await self.close()
            raise connection_error(exc, self.address) from exc

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(BleakError, OSError, TimeoutError):
                async with asyncio.timeout(DISCONNECT_S):
                    await client.disconnect()

    async def write(self, data: bytes, limit_s: float) -> None:
        if self.client is None or self.channel is None:
            raise LinkLost("the connection to the lock is gone")
        try:
            async with asyncio.timeout(limit_s):
                await self.client.write_gatt_char(
                    self.channel.written, data, response=self.channel.write_response
                )
        except TimeoutError:
            raise StepTimedOut(f"the lock did not take a write within {limit_s:g} s") from None
        except (BleakError, OSError) as exc:
            raise LinkLost(f"the connection to the lock dropped during a write ({exc})") from exc

    async def next_frame(self, limit_s: float) -> bytes:
        try:
            async with asyncio.timeout(limit_s):
                frame = await self.frames.get()
        except TimeoutError:
            raise StepTimedOut(f"the lock did not answer within {limit_s:g} s") from None
        if frame is None:
            raise LinkLost("the connection to the lock dropped while a reply was awaited")
        if isinstance(frame, LockProtocolError):
            raise frame
        return frame

    def _on_indication(self, _sender: object, data: bytearray) -> None:
        if self._framer is None:
            return
        try:
            for frame in self._framer.feed(bytes(data)):
                self.frames.put_nowait(frame)
        except LockProtocolError as exc:
            # The waiting exchange gets the error in order, where the reply would have been.
            logger.debug("unreadable indication: %s", exc)
            self.frames.put_nowait(exc)

    def _on_disconnect(self, client: BleakClient) -> None:
        # A late goodbye from a connection already replaced must not end the new one.
        if client is self.client:
            self.client = None
            self.frames.put_nowait(None)


@dataclass(eq=False)
class _PhysicalLink:
    """What every :class:`LockLink` to one lock shares: a lock can hold one connection to a
    central, and must see one command at a time."""

    address: str
    operation: asyncio.Lock = field(default_factory=asyncio.Lock)
    connection: _Connection = field(init=False)
    idle: asyncio.Task[None] | None = None
    users: int = 0

    def __post_init__(self) -> None:
        self.connection = _Connection(self.address)


# Keyed by event loop too: asyncio locks and queues belong to one loop.
_PHYSICAL_LINKS: dict[tuple[int, str], _PhysicalLink] = {}


def _physical_link(address: str) -> _PhysicalLink:
    key = (id(asyncio.get_running_loop()), address.upper())
    shared = _PHYSICAL_LINKS.get(key)
    if shared is None:
        shared = _PHYSICAL_LINKS[key] = _PhysicalLink(address.upper())
    return shared


def _forget(shared: _PhysicalLink) -> None:
    for key, value in list(_PHYSICAL_LINKS.items()):
        if value is shared:
            del _PHYSICAL_LINKS[key]


async def _disconnect_when_idle(shared: _PhysicalLink, idle_s: float) -> None:
    # A timer, not a synchronisation: the lock's battery pays for every connected second.
    await asyncio.sleep(idle_s)
    async with shared.operation:
        await shared.connection.close()


@dataclass(slots=True)
class ExchangeProgress:
    """How far one exchange got: ``committed`` once a point-of-no-return frame was written."""

    committed: bool = False


class LockLink:
    """One driver's handle on the link to a physical lock, on the driver's channel.

    Handles for the same address share the connection and the operation lock; the last one
    closed ends the connection. ``frames_sent``/``frames_received`` count this handle's
    frames (the benchmark's round trips).
    """

    def __init__(
        self,
        address: str,
        channel: Channel,
        transport: BleakTransport,
        timeouts: LinkTimeouts,
        name: str,
    ) -> None:
        self.address = address.upper()
        self.channel = channel
        self.transport = transport
        self.timeouts = timeouts
        self.name = name
        self.frames_sent = 0
        self.frames_received = 0
        self._shared: _PhysicalLink | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._shared is not None and self._shared.connection.on(self.channel)

    @contextlib.asynccontextmanager
    async def operation(self, *, linger: bool = True) -> AsyncIterator[None]:
        """Hold the lock's operation lock, connected on this handle's channel (a connection
        on another channel is closed first). After a failure the connection is closed, so a
        late reply to a failed exchange is never read by the next one. Afterwards the link
        stays up for ``idle_disconnect_s`` (``linger``) or is closed at once."""
        if self._closed:
            raise LockConnectionFailed("this lock driver is closed")
        shared = self._attach()
        async with shared.operation:
            if shared.idle is not None:
                shared.idle.cancel()
                shared.idle = None
            try:
                if not shared.connection.on(self.channel):
                    await shared.connection.close()
                    await self._open(shared)
                yield
            except BaseException:
                await shared.connection.close()
                raise
            finally:
                if linger:
                    shared.idle = asyncio.get_running_loop().create_task(
                        _disconnect_when_idle(shared, self.timeouts.idle_disconnect_s)
                    )
                else:
                    await shared.connection.close()

    async def reconnect(self) -> None:
        """Close and open the connection again; only inside :meth:`operation`."""
        shared = self._held()
        await shared.connection.close()
        await self._open(shared)

    async def drop(self) -> None:
        """Close the connection (a reply may still be on its way); only inside an operation."""
        await self._held().connection.close()

    async def run(
        self,
        exchange: Exchange,
        on_event: Callable[[object], None],
        *,
        progress: ExchangeProgress | None = None,
        committed_reply_s: float | None = None,
    ) -> list[object]:
        """Drive ``exchange`` until it is done; only inside :meth:`operation`.

        Writes every :class:`ble.exchange.SendFrame`, passes every other event to
        ``on_event`` (which may raise to end the exchange), waits ``step_s`` for each reply,
        or ``committed_reply_s`` once the point of no return is passed (a motor turning).
        Returns every event. Raises :class:`ble.errors.LinkLost`,
        :class:`ble.errors.StepTimedOut` or the framer's protocol error; ``progress`` says
        afterwards whether the action had left.
        """
        connection = self._held().connection
        progress = progress if progress is not None else ExchangeProgress()
        step_s = self.timeouts.step_s
        collected: list[object] = []
        events = exchange.start()
        while True:
            for event in events:
                collected.append(event)
                if isinstance(event, SendFrame):
                    if event.is_action:
                        # From here on the outcome is unknown until the exchange completes.
                        progress.committed = True
                    await connection.write(event.data, step_s)
                    self.frames_sent += 1
                else:
                    on_event(event)
            if exchange.done:
                return collected
            limit_s = step_s
            if progress.committed and committed_reply_s is not None:
                limit_s = committed_reply_s
            frame = await connection.next_frame(limit_s)
            self.frames_received += 1
            events = exchange.receive(frame)

    async def close(self) -> None:
        """Let go of the link; the last handle for a lock closes its connection."""
        self._closed = True
        shared, self._shared = self._shared, None
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            async with shared.operation:
                if shared.idle is not None:
                    shared.idle.cancel()
                await shared.connection.close()
            _forget(shared)

    def _attach(self) -> _PhysicalLink:
        if self._shared is None:
            self._shared = _physical_link(self.address)
            self._shared.users += 1
        return self._shared

    def _held(self) -> _PhysicalLink:
        shared = self._shared
        assert shared is not None, "used outside an operation"
        assert shared.operation.locked(), "used outside an operation"
        return shared

    async def _open(self, shared: _PhysicalLink) -> None:
        await shared.connection.open(self.channel, self.transport, self.timeouts, self.name)
