"""The virtual SwitchBot Lock as a Bumble GATT peripheral: the thin shell around
:class:`ble.sim.switchbot_lock.VirtualSwitchBotLock`.

It exposes the lock's GATT layout (:mod:`ble.switchbot.gatt`: one service, TX written
without response, RX notified), advertises as lock.md describes (manufacturer data in the
advertising data, the 0xFD3D service data in the scan response; updated in place on every
change, with the next sequence number), feeds every write to the pure lock and carries out
the effects it returns: notifications, the motor's run time, dropped links and slow replies.
Notifications go only to a client that subscribed on this connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bumble.att import AttributeValue
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, Service

from ble.bumble_backend import VirtualRadio
from ble.sim.lock import Delay, DropLink, RunMotor
from ble.sim.switchbot_lock import Effect, Notify, SwitchBotLockLink, VirtualSwitchBotLock
from ble.switchbot import gatt
from ble.switchbot.advertisement import advertising_data, scan_response_data

logger = logging.getLogger(__name__)

DEFAULT_ADDRESS = "C0:4E:5B:00:00:01"


@dataclass(slots=True)
class _Session:
    link: SwitchBotLockLink
    queue: asyncio.Queue[list[Effect] | None] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None


class VirtualSwitchBotPeripheral:
    """A :class:`VirtualSwitchBotLock` reachable over Bluetooth (a Bumble device)."""

    def __init__(
        self,
        lock: VirtualSwitchBotLock,
        device: Device,
        advertising_interval_ms: float = 20.0,
        drop_link: Callable[[Connection], Awaitable[None]] | None = None,
    ) -> None:
        self.lock = lock
        self.device = device
        self.advertising_interval_ms = advertising_interval_ms
        self._drop_link = drop_link
        self._sessions: dict[Connection, _Session] = {}
        self._writing: _Session | None = None
        self._motors: set[asyncio.Task[None]] = set()
        self._workers: set[asyncio.Task[None]] = set()
        self._readvertise: asyncio.Task[None] | None = None
        self._advertised_stale = False
        self._stopped = False
        # Set while no central is connected: tests wait on it instead of sleeping.
        self.idle = asyncio.Event()
        self.idle.set()
        self.rx: Characteristic[bytes] = Characteristic(
            gatt.RX, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        self.tx: Characteristic[bytes] = Characteristic(
            gatt.TX,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            AttributeValue(write=self._on_write),
        )
        device.add_services([Service(gatt.SERVICE, [self.tx, self.rx])])
        device.on(device.EVENT_CONNECTION, self._on_connection)
        lock.on_state_change(self._on_state_change)

    @classmethod
    async def join(
        cls, radio: VirtualRadio, lock: VirtualSwitchBotLock, address: str = DEFAULT_ADDRESS
    ) -> VirtualSwitchBotPeripheral:
        """Put the lock on ``radio`` with its GATT service, advertising. A dropped-link fault
        drops it as a supervision timeout does: neither side says goodbye."""
        device = await radio.create_peripheral(address, name="WoLock")

        async def drop(_connection: Connection) -> None:
            radio.drop_link(device)

        peripheral = cls(lock, device, radio.advertising_interval_ms, drop_link=drop)
        await peripheral.advertise()
        return peripheral

    @property
    def address(self) -> str:
        return str(self.device.random_address).split("/")[0].upper()

    async def advertise(self) -> None:
        """Advertise the lock's state; once advertising, the data is updated in place (a
        restarted advertising set would lose a connection arriving in between)."""
        if self._stopped:
            return
        lock = self.lock
        data = advertising_data(
            lock.mac, lock.sequence, lock.info, lock.battery_percent, lock.model
        )
        response = scan_response_data(lock.battery_percent, lock.model)
        adv_set = self.device.legacy_advertising_set
        if adv_set is not None:
            await adv_set.set_advertising_data(data)
            await adv_set.set_scan_response_data(response)
            if self.device.connections:
                await adv_set.start()  # a SwitchBot lock goes on advertising while connected
            return
        await self.device.start_advertising(
            advertising_data=data,
            scan_response_data=response,
            advertising_interval_min=self.advertising_interval_ms,
            advertising_interval_max=self.advertising_interval_ms,
            auto_restart=True,
        )

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

    # -- GATT ------------------------------------------------------------------------------
    def _on_connection(self, connection: Connection) -> None:
        session = _Session(self.lock.connect())
        session.worker = asyncio.create_task(self._serve(connection, session))
        self._workers.add(session.worker)
        session.worker.add_done_callback(self._workers.discard)
        self._sessions[connection] = session
        self.idle.clear()
        self._on_state_change()  # keep advertising while connected
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: self._on_disconnection(connection))

    def _on_disconnection(self, connection: Connection) -> None:
        session = self._sessions.pop(connection, None)
        if session is not None:
            session.link.disconnected()
            session.queue.put_nowait(None)
        if not self._sessions:
            self.idle.set()

    def _on_write(self, connection: Connection, value: bytes) -> None:
        session = self._sessions.get(connection)
        if session is None:
            return
        # Changes this write causes are in its own effects, after its reply.
        self._writing = session
        try:
            effects = session.link.write(bytes(value))
        finally:
            self._writing = None
        session.queue.put_nowait(effects)

    # -- effects ---------------------------------------------------------------------------
    async def _serve(self, connection: Connection, session: _Session) -> None:
        while True:
            effects = await session.queue.get()
            if effects is None:
                return
            for effect in effects:
                if isinstance(effect, Delay):
                    await asyncio.sleep(effect.seconds)
                elif isinstance(effect, Notify):
                    try:
                        await self.device.notify_subscriber(connection, self.rx, effect.frame)
                    except Exception:  # the link went away under us; the lock does not care
                        logger.debug("notification not delivered", exc_info=True)
                elif isinstance(effect, RunMotor):
                    task = asyncio.create_task(self._run_motor(effect))
                    self._motors.add(task)
                    task.add_done_callback(self._motors.discard)
                elif isinstance(effect, DropLink):
                    session.link.disconnected()
                    if self._drop_link is not None:
                        await self._drop_link(connection)
                    else:
                        await connection.disconnect()

    async def _run_motor(self, motor: RunMotor) -> None:
        await asyncio.sleep(motor.seconds)
        self.lock.motor_done(motor.run)

    def _on_state_change(self) -> None:
        # Notify every other connection that asked for notifications, then re-advertise
        # with the new sequence number (one task at a time; the last state wins).
        for session in self._sessions.values():
            if session is not self._writing and session.link.notifying:
                session.queue.put_nowait([session.link.notification()])
        self._advertised_stale = True
        if self._stopped or (self._readvertise is not None and not self._readvertise.done()):
            return
        with contextlib.suppress(RuntimeError):
            self._readvertise = asyncio.get_running_loop().create_task(self._safe_advertise())

    async def _safe_advertise(self) -> None:
        while self._advertised_stale and not self._stopped:
            self._advertised_stale = False
            try:
                await self.advertise()
            except Exception:
                logger.debug("re-advertising failed", exc_info=True)
