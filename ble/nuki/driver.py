"""The Nuki driver: :class:`ble.driver.LockDriver` over bleak, running the pure exchanges of
:mod:`ble.nuki.protocol` (Nuki Smart Lock Bluetooth API v2.x).

Shape. bleak's ``BleakClient`` carries the frames; bleak-retry-connector's
``establish_connection`` makes the connection (typed errors, backoff, service cache). Each
connection subscribes to the user-specific characteristic first thing, because the lock
forgets subscriptions between connections. One :class:`asyncio.Lock` per physical lock
(keyed by address) serialises operations from every driver object in the process, so two
commands never interleave on the air. The link is closed after ``idle_disconnect_s`` without
work, to spare the lock's batteries.

Safety rules (docs/locks.md):

* every step (scan, connect, write, each reply) has its own timeout;
* an action frame is never sent twice. If the link drops, a step times out or a reply is
  unreadable after the action frame left, the driver reads Keyturner States (once) and
  raises :class:`ble.errors.LockOutcomeUnknown` carrying what it found;
* a read-only request (Keyturner States) is retried once after an unreadable reply;
  actions never are;
* Error Reports become typed errors (:func:`ble.nuki.errors.error_for_report`).

State changes the gateway did not cause (the door opening) are seen without polling: the
lock's iBeacon flags "new state available" (:mod:`ble.nuki.advertisement`); a subscriber's
watcher then reads the states once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError, BleakError
from bleak_retry_connector import BleakNotFoundError, establish_connection

from ble.driver import DoorState, LockState, LockStatus, StatusCallback
from ble.errors import (
    LockConnectionFailed,
    LockError,
    LockJammed,
    LockNotFound,
    LockOutcomeUnknown,
    LockProtocolError,
    LockTimeout,
)
from ble.nuki import gatt
from ble.nuki.action import LockActionExchange, StatesRead
from ble.nuki.advertisement import in_pairing_mode, looks_like_nuki, new_state_flag
from ble.nuki.errors import error_for_report
from ble.nuki.events import (
    ActionCompleted,
    LockReportedError,
    Paired,
    SendFrame,
    StatesReceived,
)
from ble.nuki.frames import NukiProtocolError
from ble.nuki.messages import DoorSensorState, KeyturnerStates, LockAction, NukiLockState
from ble.nuki.pairing import PairingClient
from ble.nuki.reassembly import FrameKind, IndicationReassembler

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NukiPairing:
    """What pairing leaves behind; the gateway stores it (secret: ``shared_key``).

    ``to_json``/``from_json`` give a flat JSON object with hex strings; store it in a file of
    mode 0600 or the gateway's key store, never in logs.
    """

    address: str
    auth_id: int
    shared_key: bytes = field(repr=False)
    app_id: int
    lock_uuid: bytes
    name: str

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor": "nuki",
            "address": self.address,
            "auth_id": self.auth_id,
            "shared_key": self.shared_key.hex(),
            "app_id": self.app_id,
            "lock_uuid": self.lock_uuid.hex(),
            "name": self.name,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NukiPairing:
        try:
            key = bytes.fromhex(str(data["shared_key"]))
            if len(key) != 32:
                raise ValueError("shared_key must be 32 bytes")
            return cls(
                address=str(data["address"]).upper(),
                auth_id=int(data["auth_id"]),
                shared_key=key,
                app_id=int(data["app_id"]),
                lock_uuid=bytes.fromhex(str(data.get("lock_uuid", ""))),
                name=str(data.get("name", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LockProtocolError(f"stored pairing data is unusable ({exc})") from exc


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
class NukiTimeouts:
    """Seconds. ``motor_s`` bounds the wait for COMPLETE while the bolt moves."""

    scan_s: float = 8.0
    connect_s: float = 12.0
    step_s: float = 4.0
    motor_s: float = 12.0
    idle_disconnect_s: float = 3.0
    connect_attempts: int = 2

    def operation_budget_s(self) -> float:
        """The longest any one driver call can take: an action (scan, connect, challenge,
        action, motor) then, if its outcome is lost, one reconnect and state read. A caller
        wrapping calls in its own timeout should allow at least this, or it cancels the
        driver before it can report what the lock did."""
        reach = self.scan_s + 2.0 + self.connect_s
        action = reach + 4 * self.step_s + self.motor_s
        reread = reach + 3 * self.step_s
        return action + reread


@dataclass(frozen=True, slots=True)
class FoundLock:
    address: str
    name: str | None
    pairing_mode: bool
    rssi: int | None


def status_from_states(states: KeyturnerStates, read_at: datetime | None = None) -> LockStatus:
    lock = {
        NukiLockState.LOCKED: LockState.LOCKED,
        NukiLockState.UNLOCKING: LockState.UNLOCKING,
        NukiLockState.UNLATCHING: LockState.UNLOCKING,
        NukiLockState.UNLOCKED: LockState.UNLOCKED,
        NukiLockState.UNLATCHED: LockState.UNLOCKED,
        NukiLockState.UNLOCKED_LOCK_N_GO: LockState.UNLOCKED,
        NukiLockState.LOCKING: LockState.LOCKING,
        NukiLockState.MOTOR_BLOCKED: LockState.JAMMED,
    }.get(states.lock_state, LockState.UNKNOWN)
    door = {
        DoorSensorState.DOOR_OPENED: DoorState.OPEN,
        DoorSensorState.DOOR_CLOSED: DoorState.CLOSED,
    }.get(states.door_sensor, DoorState.UNKNOWN)
    return LockStatus(
        lock=lock,
        door=door,
        battery_percent=states.battery_percent,
        battery_critical=states.battery_critical,
        read_at=read_at or datetime.now(UTC),
    )


class NoBluetoothAdapter(LockConnectionFailed):
    """This computer has no usable Bluetooth radio (no adapter, or no BlueZ)."""

    code = "no_bluetooth_adapter"


class _LinkLost(Exception):
    """The BLE link ended while a reply was awaited."""


@dataclass(eq=False)
class _PhysicalLock:
    """What every driver object for one lock shares: a lock can hold one connection to a
    central, and must see one command at a time."""

    address: str
    operation: asyncio.Lock
    keyturner: _Connection
    idle: asyncio.Task[None] | None = None
    users: int = 0


# Keyed by event loop too: asyncio locks and queues belong to one loop.
_PHYSICAL_LOCKS: dict[tuple[int, str], _PhysicalLock] = {}


def physical_lock(address: str) -> _PhysicalLock:
    key = (id(asyncio.get_running_loop()), address.upper())
    shared = _PHYSICAL_LOCKS.get(key)
    if shared is None:
        shared = _PHYSICAL_LOCKS[key] = _PhysicalLock(
            address.upper(),
            asyncio.Lock(),
            _Connection(address.upper(), gatt.KEYTURNER_USDIO, FrameKind.ENCRYPTED),
        )
    return shared


def _forget_physical_lock(shared: _PhysicalLock) -> None:
    for key, value in list(_PHYSICAL_LOCKS.items()):
        if value is shared:
            del _PHYSICAL_LOCKS[key]


def _connection_error(exc: BaseException, address: str) -> LockError:
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


async def find_lock(address: str, transport: BleakTransport, scan_s: float) -> BLEDevice:
    try:
        async with asyncio.timeout(scan_s + 2.0):
            device = await BleakScanner.find_device_by_address(
                address, timeout=scan_s, **transport.scanner_kwargs()
            )
    except (BleakError, OSError, TimeoutError) as exc:
        raise _connection_error(exc, address) from exc
    if device is None:
        raise LockNotFound(
            f"no lock with address {address} answered within {scan_s:g} s: it is out of "
            "range, its batteries are empty, or the address is wrong"
        )
    return device


async def scan_nuki(transport: BleakTransport, scan_s: float = 5.0) -> list[FoundLock]:
    """Nuki locks advertising nearby, those in pairing mode flagged."""
    try:
        async with asyncio.timeout(scan_s + 2.0):
            found = await BleakScanner.discover(
                timeout=scan_s, return_adv=True, **transport.scanner_kwargs()
            )
    except (BleakError, OSError, TimeoutError) as exc:
        raise _connection_error(exc, "scan") from exc
    locks = [
        FoundLock(
            address=device.address.upper(),
            name=adv.local_name or device.name,
            pairing_mode=in_pairing_mode(adv.service_uuids),
            rssi=adv.rssi,
        )
        for device, adv in found.values()
        if looks_like_nuki(adv.service_uuids, adv.manufacturer_data)
    ]
    return sorted(locks, key=lambda lock: lock.address)


class _Connection:
    """One bleak connection to the lock with its indication stream on one characteristic."""

    def __init__(self, address: str, characteristic: str, kind: FrameKind) -> None:
        self.address = address
        self.characteristic = characteristic
        self.client: BleakClient | None = None
        # A frame, an unreadable one (its error), or None when the link went away.
        self.frames: asyncio.Queue[bytes | NukiProtocolError | None] = asyncio.Queue()
        self._reassembler = IndicationReassembler(kind)
        self._protocol_errors: list[NukiProtocolError] = []

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def open(self, transport: BleakTransport, timeouts: NukiTimeouts, name: str) -> None:
        device = await find_lock(self.address, transport, timeouts.scan_s)
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
            raise _connection_error(exc, self.address) from exc
        self.client = client
        self._reassembler.reset()
        self.frames = asyncio.Queue()
        try:
            async with asyncio.timeout(timeouts.step_s):
                await client.start_notify(self.characteristic, self._on_indication)
        except (BleakError, OSError, TimeoutError) as exc:
            await self.close()
            raise _connection_error(exc, self.address) from exc

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(BleakError, OSError, TimeoutError):
                async with asyncio.timeout(5.0):
                    await client.disconnect()

    async def write(self, data: bytes, limit_s: float) -> None:
        if self.client is None:
            raise _LinkLost
        try:
            async with asyncio.timeout(limit_s):
                await self.client.write_gatt_char(self.characteristic, data, response=True)
        except (BleakError, OSError) as exc:
            raise _LinkLost from exc

    async def next_frame(self, limit_s: float) -> bytes:
        async with asyncio.timeout(limit_s):
            frame = await self.frames.get()
        if frame is None:
            raise _LinkLost
        if isinstance(frame, NukiProtocolError):
            raise frame
        return frame

    def _on_indication(self, _sender: object, data: bytearray) -> None:
        try:
            for frame in self._reassembler.feed(bytes(data)):
                self.frames.put_nowait(frame)
        except NukiProtocolError as exc:
            # The waiting exchange gets the error in order, where the reply would have been.
            logger.debug("unreadable indication: %s", exc.reason)
            self.frames.put_nowait(exc)

    def _on_disconnect(self, _client: BleakClient) -> None:
        self.client = None
        self.frames.put_nowait(None)


class NukiDriver:
    """A paired Nuki Smart Lock, driven over bleak. Implements :class:`ble.driver.LockDriver`."""

    def __init__(
        self,
        pairing: NukiPairing,
        transport: BleakTransport | None = None,
        timeouts: NukiTimeouts | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.pairing = pairing
        self.transport = transport or BleakTransport()
        self.timeouts = timeouts or NukiTimeouts()
        self._random = random_bytes
        self._shared: _PhysicalLock | None = None
        self._callbacks: list[StatusCallback] = []
        self._last: LockStatus | None = None
        self._watcher: BleakScanner | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._closed = False
        self._action_sent = False
        # Counts the frames written and read, for the benchmark's round-trip figure.
        self.frames_sent = 0
        self.frames_received = 0

    # -- LockDriver ----------------------------------------------------------------------
    async def status(self) -> LockStatus:
        async with self._operation():
            try:
                return await self._read_states()
            except NukiProtocolError:
                # Read-only: asking again cannot move the bolt.
                logger.info("unreadable Keyturner States reply; asking once more")
                return await self._read_states()

    async def unlock(self) -> LockStatus:
        return await self._act(LockAction.UNLOCK)

    async def lock(self) -> LockStatus:
        return await self._act(LockAction.LOCK)

    async def unlatch(self) -> LockStatus:
        return await self._act(LockAction.UNLATCH)

    def subscribe(self, callback: StatusCallback) -> Callable[[], None]:
        self._callbacks.append(callback)
        if self._watcher is None and not self._closed:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(self._start_watcher())

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)
            if not self._callbacks and self._watcher is not None:
                watcher, self._watcher = self._watcher, None
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop().create_task(_stop_scanner(watcher))

        return unsubscribe

    async def close(self) -> None:
        self._closed = True
        if self._refresh is not None:
            self._refresh.cancel()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            with contextlib.suppress(BleakError, OSError, TimeoutError):
                await watcher.stop()
        shared, self._shared = self._shared, None
        if shared is not None:
            shared.users -= 1
            if shared.users <= 0:
                async with shared.operation:
                    if shared.idle is not None:
                        shared.idle.cancel()
                    await shared.keyturner.close()
                _forget_physical_lock(shared)

    @property
    def connected(self) -> bool:
        return self._shared is not None and self._shared.keyturner.connected

    @property
    def _connection(self) -> _Connection:
        assert self._shared is not None, "used outside an operation"
        return self._shared.keyturner

    def _physical(self) -> _PhysicalLock:
        if self._shared is None:
            self._shared = physical_lock(self.pairing.address)
            self._shared.users += 1
        return self._shared

    # -- operations ----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _operation(self) -> Any:
        if self._closed:
            raise LockConnectionFailed("this lock driver is closed")
        shared = self._physical()
        async with shared.operation:
            if shared.idle is not None:
                shared.idle.cancel()
                shared.idle = None
            try:
                if not shared.keyturner.connected:
                    await shared.keyturner.open(self.transport, self.timeouts, self.pairing.name)
                yield
            except BaseException:
                # A late reply to a failed exchange must not be read by the next one.
                await shared.keyturner.close()
                raise
            finally:
                shared.idle = asyncio.get_running_loop().create_task(
                    _disconnect_when_idle(shared, self.timeouts.idle_disconnect_s)
                )

    async def _read_states(self) -> LockStatus:
        exchange = StatesRead(self.pairing.shared_key, self.pairing.auth_id, self._random)
        try:
            events = await self._run(exchange, motor=False)
        except _LinkLost:
            raise LockConnectionFailed(
                "the connection to the lock dropped while reading its state; try again"
            ) from None
        except TimeoutError:
            await self._connection.close()
            raise LockTimeout("the lock did not report its state in time") from None
        states = next(e.states for e in events if isinstance(e, StatesReceived))
        return self._publish(states)

    async def _act(self, action: LockAction) -> LockStatus:
        verb = action.name.lower()
        async with self._operation():
            exchange = LockActionExchange(
                self.pairing.shared_key,
                self.pairing.auth_id,
                self.pairing.app_id,
                action,
                self._random,
            )
            try:
                events = await self._run(exchange, motor=True)
            except (_LinkLost, TimeoutError, NukiProtocolError) as exc:
                if not self._action_sent:
                    raise self._before_action_error(exc, verb) from None
                raise await self._outcome_unknown(exc, verb) from None
            completed = next(e for e in events if isinstance(e, ActionCompleted))
            if completed.states is not None:
                return self._publish(completed.states)
            return await self._read_states()

    def _before_action_error(self, exc: BaseException, verb: str) -> LockError:
        if isinstance(exc, NukiProtocolError):
            return exc
        if isinstance(exc, TimeoutError):
            return LockTimeout(f"the lock did not answer in time; nothing was sent, {verb} again")
        return LockConnectionFailed(
            f"the connection to the lock dropped before the {verb} command was sent; "
            f"nothing happened, {verb} again"
        )

    async def _outcome_unknown(self, exc: BaseException, verb: str) -> LockOutcomeUnknown:
        """The action frame left and then the exchange broke: read, never resend."""
        logger.warning(
            "%s outcome unknown (%s); reading the lock's state", verb, type(exc).__name__
        )
        await self._connection.close()
        status: LockStatus | None = None
        try:
            if not self._connection.connected:
                await self._connection.open(self.transport, self.timeouts, self.pairing.name)
            status = await self._read_states()
        except (LockError, NukiProtocolError, _LinkLost, TimeoutError) as read_exc:
            logger.warning("could not read the lock after a lost %s: %s", verb, read_exc)
        found = f"the lock now reports {status.lock.value}" if status else "it could not be read"
        if isinstance(exc, _LinkLost):
            lost = "the link dropped"
        elif isinstance(exc, TimeoutError):
            lost = "the lock stopped answering"
        else:
            lost = "the lock's reply was unreadable"
        return LockOutcomeUnknown(
            f"{lost} after the {verb} command was sent, so whether it ran is unknown; "
            f"{found}. The command was not sent again.",
            status,
        )

    async def _run(self, exchange: StatesRead | LockActionExchange, *, motor: bool) -> list[Any]:
        """Drive a sans-IO exchange over the connection until it is done."""
        self._action_sent = False
        collected: list[Any] = []
        events: list[Any] = list(exchange.start())
        while True:
            for event in events:
                collected.append(event)
                if isinstance(event, SendFrame):
                    if event.is_action:
                        # From here on the outcome is unknown until COMPLETE.
                        self._action_sent = True
                    await self._connection.write(event.data, self.timeouts.step_s)
                    self.frames_sent += 1
                elif isinstance(event, StatesReceived) and not exchange.done:
                    self._publish(event.states)
                elif isinstance(event, LockReportedError):
                    self._raise_report(event, collected)
            if exchange.done:
                return collected
            waiting_for_motor = motor and self._action_sent
            timeout = self.timeouts.motor_s if waiting_for_motor else self.timeouts.step_s
            frame = await self._connection.next_frame(timeout)
            self.frames_received += 1
            events = list(exchange.receive(frame))

    def _raise_report(self, event: LockReportedError, collected: list[Any]) -> None:
        error = error_for_report(event.report)
        if isinstance(error, LockJammed):
            jammed = [e.states for e in collected if isinstance(e, StatesReceived)]
            if jammed:
                self._publish(jammed[-1])
        raise error

    def _publish(self, states: KeyturnerStates) -> LockStatus:
        status = status_from_states(states)
        previous, self._last = self._last, status
        changed = previous is None or (
            (previous.lock, previous.door, previous.battery_percent, previous.battery_critical)
            != (status.lock, status.door, status.battery_percent, status.battery_critical)
        )
        if changed:
            for callback in list(self._callbacks):
                try:
                    callback(status)
                except Exception:
                    logger.exception("a lock status subscriber failed")
        return status

    # -- change watcher ------------------------------------------------------------------
    async def _start_watcher(self) -> None:
        scanner = BleakScanner(self._on_advertisement, **self.transport.scanner_kwargs())
        try:
            async with asyncio.timeout(self.timeouts.step_s):
                await scanner.start()
        except (BleakError, OSError, TimeoutError) as exc:
            logger.warning("cannot watch the lock's advertisements: %s", exc)
            return
        if self._closed:
            await scanner.stop()
            return
        self._watcher = scanner

    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        if device.address.upper() != self.pairing.address.upper():
            return
        if new_state_flag(adv.manufacturer_data) and (
            self._refresh is None or self._refresh.done()
        ):
            self._refresh = asyncio.get_running_loop().create_task(self._refresh_status())

    async def _refresh_status(self) -> None:
        try:
            await self.status()
        except LockError as exc:
            logger.info("could not read the lock after it flagged a change: %s", exc)


async def _stop_scanner(scanner: BleakScanner) -> None:
    with contextlib.suppress(BleakError, OSError, TimeoutError):
        async with asyncio.timeout(5.0):
            await scanner.stop()


async def _disconnect_when_idle(shared: _PhysicalLock, idle_s: float) -> None:
    # A timer, not a synchronisation: the lock's battery pays for every connected second.
    await asyncio.sleep(idle_s)
    async with shared.operation:
        await shared.keyturner.close()


async def pair_nuki(
    address: str,
    name: str,
    *,
    transport: BleakTransport | None = None,
    timeouts: NukiTimeouts | None = None,
    app_id: int | None = None,
    client_private: bytes | None = None,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> NukiPairing:
    """Pair with the Nuki at ``address`` (it must be in pairing mode) and return the data
    to store. Raises :class:`ble.nuki.errors.NukiPairingRefused` when the lock refuses."""
    transport = transport or BleakTransport()
    timeouts = timeouts or NukiTimeouts()
    private = client_private if client_private is not None else random_bytes(32)
    app = app_id if app_id is not None else int.from_bytes(random_bytes(4), "little")
    client = PairingClient(private, name, app, random_bytes=random_bytes)
    connection = _Connection(address.upper(), gatt.PAIRING_GDIO, FrameKind.PLAIN)
    shared = physical_lock(address)
    async with shared.operation:
        # One connection per lock: a driver's idle keyturner link must go first.
        await shared.keyturner.close()
        await connection.open(transport, timeouts, name)
        try:
            events: list[Any] = list(client.start())
            while True:
                for event in events:
                    if isinstance(event, SendFrame):
                        await connection.write(event.data, timeouts.step_s)
                    elif isinstance(event, LockReportedError):
                        raise error_for_report(event.report)
                    elif isinstance(event, Paired):
                        result = event.result
                        return NukiPairing(
                            address=address.upper(),
                            auth_id=result.auth_id,
                            shared_key=result.shared_key,
                            app_id=result.app_id,
                            lock_uuid=result.lock_uuid,
                            name=name,
                        )
                events = list(client.receive(await connection.next_frame(timeouts.step_s)))
        except _LinkLost:
            raise LockConnectionFailed(
                "the connection dropped during pairing; keep the lock in pairing mode and try again"
            ) from None
        except TimeoutError:
            raise LockTimeout(
                "the lock stopped answering during pairing; is it still in pairing mode?"
            ) from None
        finally:
            await connection.close()
