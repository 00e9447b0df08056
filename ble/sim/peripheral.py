"""The virtual Nuki lock as a Bumble GATT peripheral: the thin shell around
:class:`ble.sim.lock.VirtualNukiLock`.

It exposes the lock's GATT layout (Nuki BLE API §3: pairing service with its GDIO
characteristic; keyturner service with GDIO and USDIO; write + indicate), advertises as a
Nuki does (:mod:`ble.nuki.advertisement`), feeds every write to the pure lock and carries
out the effects it returns: indications cut at the negotiated MTU minus 3 (20-byte pieces
at the default MTU of 23), the motor's run time,
dropped links and slow replies. Indications go only to a client that subscribed on this
connection, since a real lock forgets subscriptions between connections.

Each connection has one worker task so replies leave in order; writes return at once, as
the lock answers on the indication channel, not in the write response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bumble import hci
from bumble.att import AttributeValue
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, Service

from ble.bumble_backend import VirtualRadio
from ble.nuki import gatt
from ble.nuki.advertisement import advertising_data, scan_response_data
from ble.nuki.frames import indication_bytes, split_indications
from ble.sim.lock import (
    PAIRING,
    USDIO,
    Delay,
    DropLink,
    Effect,
    Indicate,
    LockLink,
    RunMotor,
    VirtualNukiLock,
)

logger = logging.getLogger(__name__)

DEFAULT_ADDRESS = "C0:4E:01:5A:00:01"


@dataclass(slots=True)
class _Session:
    link: LockLink
    queue: asyncio.Queue[list[Effect] | None] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None


class VirtualNukiPeripheral:
    """A :class:`VirtualNukiLock` reachable over Bluetooth (a Bumble device)."""

    def __init__(
        self,
        lock: VirtualNukiLock,
        device: Device,
        advertising_interval_ms: float = 20.0,
        drop_link: Callable[[Connection], Awaitable[None]] | None = None,
    ) -> None:
        self.lock = lock
        self._drop_link = drop_link
        self.device = device
        self.advertising_interval_ms = advertising_interval_ms
        self._sessions: dict[Connection, _Session] = {}
        self._motors: set[asyncio.Task[None]] = set()
        self._workers: set[asyncio.Task[None]] = set()
        # Set while no central is connected: tests wait on it instead of sleeping.
        self.idle = asyncio.Event()
        self.idle.set()
        # Set at every disconnection (a caller clears it first): the benchmark's sync point.
        self.disconnected = asyncio.Event()
        # Seconds a central has been connected, summed over connections: the radio time
        # that costs a real lock its batteries (bench/ble.py, connected_s_per_day).
        self.connected_s = 0.0
        self._connected_at: dict[Connection, float] = {}
        self._readvertise: asyncio.Task[None] | None = None
        self._advertised_stale = False
        self._stopped = False
        # The piece size used for each indicated message: tests check what the link allowed.
        self.indication_sizes: list[int] = []
        self.pairing_gdio = self._characteristic(gatt.PAIRING_GDIO, self._on_pairing_write)
        self.keyturner_gdio = self._characteristic(gatt.KEYTURNER_GDIO, self._on_gdio_write)
        self.keyturner_usdio = self._characteristic(gatt.KEYTURNER_USDIO, self._on_usdio_write)
        device.add_services(
            [
                Service(gatt.PAIRING_SERVICE, [self.pairing_gdio]),
                Service(gatt.KEYTURNER_SERVICE, [self.keyturner_gdio, self.keyturner_usdio]),
            ]
        )
        device.on(device.EVENT_CONNECTION, self._on_connection)
        lock.on_state_change(self._on_state_change)

    @classmethod
    async def join(
        cls,
        radio: VirtualRadio,
        lock: VirtualNukiLock,
        address: str = DEFAULT_ADDRESS,
    ) -> VirtualNukiPeripheral:
        """Put the lock on ``radio`` (its own controller), with GATT services, advertising
        at the radio's interval. A dropped-link fault drops it as a supervision timeout
        does: neither side says goodbye."""
        device = await radio.create_peripheral(address, name=lock.name)

        async def drop(_connection: Connection) -> None:
            radio.drop_link(device)

        peripheral = cls(lock, device, radio.advertising_interval_ms, drop_link=drop)
        await peripheral.advertise()
        return peripheral

    @property
    def address(self) -> str:
        return str(self.device.random_address).split("/")[0].upper()

    async def advertise(self) -> None:
        """Advertise what the lock's state calls for. Once advertising, the data is updated
        in place, as a lock's firmware does: stopping and restarting the advertising set
        would lose a connection that arrives in between (the host then finds no advertising
        set for it, and every write on that link goes unanswered)."""
        if self._stopped:
            return
        data = advertising_data(
            self.lock.pairing_mode,
            self.lock.new_state_available,
            power=self.lock.traits.beacon_power,
            nuki_id=self.lock.nuki_id,
        )
        response = scan_response_data(self.lock.name)
        device = self.device
        adv_set = device.legacy_advertising_set
        if adv_set is not None:
            await adv_set.set_advertising_data(data)
            await adv_set.set_scan_response_data(response)
            if device.connections:
                # The controller stopped the set when a central connected; the lock goes on
                # beaconing while connected, so a watcher sees the new-state flag even while
                # a connection lingers (enabling the same set again loses nothing).
                await adv_set.start()
            return
        if device.legacy_advertiser is not None:  # a controller without extended advertising
            device.advertising_data, device.scan_response_data = data, response
            await device.send_sync_command(
                hci.HCI_LE_Set_Advertising_Data_Command(advertising_data=data)
            )
            await device.send_sync_command(
                hci.HCI_LE_Set_Scan_Response_Data_Command(scan_response_data=response)
            )
            return
        await device.start_advertising(
            advertising_data=data,
            scan_response_data=response,
            advertising_interval_min=self.advertising_interval_ms,
            advertising_interval_max=self.advertising_interval_ms,
            auto_restart=True,
        )

    async def press_button_for_pairing(self) -> None:
        self.lock.press_button_for_pairing()
        await self.advertise()

    async def close(self) -> None:
        self._stopped = True
        for session in self._sessions.values():
            session.queue.put_nowait(None)
        tasks = [*self._motors]
        if self._readvertise is not None:
            tasks.append(self._readvertise)
        for task in tasks:
            task.cancel()
        tasks += self._workers
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=1.0)
            for task in stuck:
                logger.warning("virtual lock task did not stop: %r", task.get_coro())
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
        for connection in list(self._sessions):
            with contextlib.suppress(Exception):
                await connection.disconnect()
        with contextlib.suppress(Exception):
            await self.device.power_off()

    # -- GATT ----------------------------------------------------------------------------
    def _characteristic(
        self, uuid: str, on_write: Callable[[Connection, bytes], None]
    ) -> Characteristic[bytes]:
        return Characteristic(
            uuid,
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            Characteristic.WRITEABLE,
            AttributeValue(write=on_write),
        )

    def _on_connection(self, connection: Connection) -> None:
        session = _Session(self.lock.connect())
        session.worker = asyncio.create_task(self._serve(connection, session))
        self._workers.add(session.worker)
        session.worker.add_done_callback(self._workers.discard)
        self._sessions[connection] = session
        self._connected_at[connection] = asyncio.get_running_loop().time()
        self.idle.clear()
        self._on_state_change()  # keep beaconing while connected
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: self._on_disconnection(connection))

    def _on_disconnection(self, connection: Connection) -> None:
        since = self._connected_at.pop(connection, None)
        if since is not None:
            self.connected_s += asyncio.get_running_loop().time() - since
        self.disconnected.set()
        session = self._sessions.pop(connection, None)
        if session is not None:
            session.link.disconnected()
            session.queue.put_nowait(None)
        if not self._sessions:
            self.idle.set()

    def _on_pairing_write(self, connection: Connection, value: bytes) -> None:
        self._submit(connection, lambda link: link.write_pairing(bytes(value)))

    def _on_usdio_write(self, connection: Connection, value: bytes) -> None:
        self._submit(connection, lambda link: link.write_usdio(bytes(value)))

    def _on_gdio_write(self, connection: Connection, value: bytes) -> None:
        # The keyturner GDIO only carries a few unauthenticated reads the gateway never
        # uses; the real lock ignores what it does not understand there.
        logger.debug("ignored %d bytes on the keyturner GDIO", len(value))

    def _submit(self, connection: Connection, step: Callable[[LockLink], list[Effect]]) -> None:
        session = self._sessions.get(connection)
        if session is None:
            return
        session.queue.put_nowait(step(session.link))

    # -- effects ---------------------------------------------------------------------------
    async def _serve(self, connection: Connection, session: _Session) -> None:
        while True:
            effects = await session.queue.get()
            if effects is None:  # the link ended or the lock is shutting down
                return
            for effect in effects:
                if isinstance(effect, Delay):
                    await asyncio.sleep(effect.seconds)
                elif isinstance(effect, Indicate):
                    await self._indicate(connection, effect)
                elif isinstance(effect, RunMotor):
                    task = asyncio.create_task(self._run_motor(effect, session, connection))
                    self._motors.add(task)
                    task.add_done_callback(self._motors.discard)
                elif isinstance(effect, DropLink):
                    session.link.disconnected()
                    if self._drop_link is not None:
                        await self._drop_link(connection)
                    else:
                        await connection.disconnect()

    async def _indicate(self, connection: Connection, effect: Indicate) -> None:
        characteristic = (
            self.pairing_gdio
            if effect.characteristic == PAIRING
            else (self.keyturner_usdio if effect.characteristic == USDIO else None)
        )
        if characteristic is None:
            return
        # Real locks send a whole message per indication once a larger MTU is negotiated
        # (81- and 132-byte messages from Smart Lock 2.0 and 4.0), 20-byte pieces at the
        # default MTU of 23; clients written against real locks rely on the former.
        size = indication_bytes(int(connection.att_mtu))
        self.indication_sizes.append(size)
        for piece in split_indications(effect.frame, size):
            try:
                await self.device.indicate_subscriber(connection, characteristic, piece)
            except Exception:  # the link went away under us; the lock does not care
                logger.debug("indication not delivered", exc_info=True)
                return

    async def _run_motor(self, motor: RunMotor, session: _Session, connection: Connection) -> None:
        await asyncio.sleep(motor.seconds)
        effects = self.lock.motor_done(motor.run)
        if effects and connection in self._sessions:
            session.queue.put_nowait(effects)

    def _on_state_change(self) -> None:
        # Re-advertise so scanners see the "new state available" flag. One task at a time;
        # a change while it runs makes it go round once more, so the last state is the one
        # on air.
        self._advertised_stale = True
        if self._stopped or (self._readvertise is not None and not self._readvertise.done()):
            return
        with contextlib.suppress(RuntimeError):  # no running loop: nothing advertises
            self._readvertise = asyncio.get_running_loop().create_task(self._safe_advertise())

    async def _safe_advertise(self) -> None:
        while self._advertised_stale and not self._stopped:
            self._advertised_stale = False
            try:
                await self.advertise()
            except Exception:
                logger.debug("re-advertising failed", exc_info=True)
