"""The Nuki driver: :class:`ble.driver.LockDriver` for the Nuki Smart Lock, running the pure
exchanges of :mod:`ble.nuki.protocol` (Nuki Smart Lock Bluetooth API v2.x, §10 "Command
usage examples") over the vendor-neutral BLE link (:mod:`ble.link`).

What is Nuki's here: the GATT channels (§3: encrypted frames on the keyturner's
user-specific characteristic, plain frames on the pairing characteristic), the exchanges and
their events, the mapping from Keyturner States to :class:`ble.driver.LockStatus`, and the
rules a Nuki driver keeps (docs/locks.md):

* the Lock Action frame is the point of no return: it is never sent twice. If the link
  drops, a step times out or a reply is unreadable after it left, the driver reads Keyturner
  States (once) and raises :class:`ble.errors.LockOutcomeUnknown` carrying what it found;
* a read-only request (Keyturner States) is retried once after an unreadable reply;
  actions never are;
* Error Reports become typed errors (:func:`ble.nuki.errors.error_for_report`).

The connection, the operation lock, idle disconnect, subscriptions, per-step timeouts and
the exchange loop are the link's.

State changes the gateway did not cause (the door opening) are seen without polling: the
lock's iBeacon flags "new state available" (:mod:`ble.nuki.advertisement`); a subscriber's
watcher then reads the states once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ble.driver import DoorState, LockState, LockStatus
from ble.errors import (
    LinkLost,
    LockConnectionFailed,
    LockError,
    LockJammed,
    LockOutcomeUnknown,
    LockProtocolError,
    LockTimeout,
    StepTimedOut,
)
from ble.link import (
    Advertisement,
    AdvertisementWatch,
    BleakTransport,
    Channel,
    ExchangeProgress,
    LinkTimeouts,
    LockLink,
    discover,
)
from ble.linked_driver import LinkedLockDriver
from ble.nuki import gatt
from ble.nuki.action import ConfigRead, LockActionExchange, StatesRead
from ble.nuki.advertisement import in_pairing_mode, looks_like_nuki, new_state_flag
from ble.nuki.config import Config
from ble.nuki.errors import error_for_report
from ble.nuki.events import (
    ActionCompleted,
    ConfigReceived,
    LockReportedError,
    Paired,
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
class NukiTimeouts(LinkTimeouts):
    """The link's step bounds, plus ``motor_s``: the wait for COMPLETE while the bolt moves."""

    motor_s: float = 12.0

    def operation_budget_s(self) -> float:
        """The longest any one driver call can take: an action (scan, connect, challenge,
        action, motor) then, if its outcome is lost, one reconnect and state read. A caller
        wrapping calls in its own timeout should allow at least this, or it cancels the
        driver before it can report what the lock did."""
        action = self.reach_s() + 4 * self.step_s + self.motor_s
        reread = self.reach_s() + 3 * self.step_s
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


KEYTURNER = Channel(gatt.KEYTURNER_USDIO, lambda: IndicationReassembler(FrameKind.ENCRYPTED))
PAIRING = Channel(gatt.PAIRING_GDIO, lambda: IndicationReassembler(FrameKind.PLAIN))


async def scan_nuki(transport: BleakTransport, scan_s: float = 5.0) -> list[FoundLock]:
    """Nuki locks advertising nearby, those in pairing mode flagged."""
    locks = [
        FoundLock(
            address=adv.address,
            name=adv.name,
            pairing_mode=in_pairing_mode(adv.service_uuids, adv.service_data),
            rssi=adv.rssi,
        )
        for adv in await discover(transport, scan_s)
        if looks_like_nuki(adv.service_uuids, adv.manufacturer_data, adv.service_data)
    ]
    return sorted(locks, key=lambda lock: lock.address)


class NukiDriver(LinkedLockDriver):
    """A paired Nuki Smart Lock, driven over the BLE link. Implements
    :class:`ble.driver.LockDriver`."""

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
        super().__init__(
            LockLink(pairing.address, KEYTURNER, self.transport, self.timeouts, pairing.name)
        )
        self._last: LockStatus | None = None

    # -- LockDriver ----------------------------------------------------------------------
    async def status(self) -> LockStatus:
        async with self._link.operation():
            try:
                return await self._read_states()
            except NukiProtocolError:
                # Read-only: asking again cannot move the bolt.
                logger.info("unreadable Keyturner States reply; asking once more")
                return await self._read_states()

    async def config(self) -> Config:
        """The lock's configuration (name, Nuki ID, firmware, hardware; §6 Request Config),
        what Nuki clients read on their first poll. Read-only: retried once if unreadable."""
        async with self._link.operation():
            try:
                return await self._read_config()
            except NukiProtocolError:
                logger.info("unreadable Config reply; asking once more")
                return await self._read_config()

    async def unlock(self) -> LockStatus:
        return await self._act(LockAction.UNLOCK)

    async def lock(self) -> LockStatus:
        return await self._act(LockAction.LOCK)

    async def unlatch(self) -> LockStatus:
        return await self._act(LockAction.UNLATCH)

    # -- operations ----------------------------------------------------------------------
    async def _read_states(self) -> LockStatus:
        exchange = StatesRead(self.pairing.shared_key, self.pairing.auth_id, self._random)
        try:
            events = await self._link.run(exchange, self._on_event(exchange))
        except LinkLost:
            raise LockConnectionFailed(
                "the connection to the lock dropped while reading its state; try again"
            ) from None
        except StepTimedOut:
            await self._link.drop()
            raise LockTimeout("the lock did not report its state in time") from None
        states = next(e.states for e in events if isinstance(e, StatesReceived))
        return self._publish(states)

    async def _read_config(self) -> Config:
        exchange = ConfigRead(self.pairing.shared_key, self.pairing.auth_id, self._random)
        try:
            events = await self._link.run(exchange, self._on_event(exchange))
        except LinkLost:
            raise LockConnectionFailed(
                "the connection to the lock dropped while reading its config; try again"
            ) from None
        except StepTimedOut:
            await self._link.drop()
            raise LockTimeout("the lock did not send its config in time") from None
        return next(e.config for e in events if isinstance(e, ConfigReceived))

    async def _act(self, action: LockAction) -> LockStatus:
        verb = action.name.lower()
        async with self._link.operation():
            exchange = LockActionExchange(
                self.pairing.shared_key,
                self.pairing.auth_id,
                self.pairing.app_id,
                action,
                self._random,
            )
            progress = ExchangeProgress()
            try:
                events = await self._link.run(
                    exchange,
                    self._on_event(exchange),
                    progress=progress,
                    committed_reply_s=self.timeouts.motor_s,
                )
            except (LinkLost, StepTimedOut, NukiProtocolError) as exc:
                if not progress.committed:
                    raise self._before_action_error(exc, verb) from None
                raise await self._outcome_unknown(exc, verb) from None
            completed = next(e for e in events if isinstance(e, ActionCompleted))
            if completed.states is not None:
                return self._publish(completed.states)
            return await self._read_states()

    def _before_action_error(self, exc: LockError, verb: str) -> LockError:
        if isinstance(exc, NukiProtocolError):
            return exc
        if isinstance(exc, StepTimedOut):
            return LockTimeout(f"the lock did not answer in time; nothing was sent, {verb} again")
        return LockConnectionFailed(
            f"the connection to the lock dropped before the {verb} command was sent; "
            f"nothing happened, {verb} again"
        )

    async def _outcome_unknown(self, exc: LockError, verb: str) -> LockOutcomeUnknown:
        """The action frame left and then the exchange broke: read, never resend."""
        logger.warning(
            "%s outcome unknown (%s); reading the lock's state", verb, type(exc).__name__
        )
        status: LockStatus | None = None
        try:
            await self._link.reconnect()
            status = await self._read_states()
        except LockError as read_exc:
            logger.warning("could not read the lock after a lost %s: %s", verb, read_exc)
        found = f"the lock now reports {status.lock.value}" if status else "it could not be read"
        if isinstance(exc, LinkLost):
            lost = "the link dropped"
        elif isinstance(exc, StepTimedOut):
            lost = "the lock stopped answering"
        else:
            lost = "the lock's reply was unreadable"
        return LockOutcomeUnknown(
            f"{lost} after the {verb} command was sent, so whether it ran is unknown; "
            f"{found}. The command was not sent again.",
            status,
        )

    def _on_event(
        self, exchange: StatesRead | LockActionExchange | ConfigRead
    ) -> Callable[[object], None]:
        """What the driver does with the exchange's events other than frames to send."""
        seen: list[KeyturnerStates] = []

        def on_event(event: object) -> None:
            if isinstance(event, StatesReceived):
                seen.append(event.states)
                if not exchange.done:
                    self._publish(event.states)
            elif isinstance(event, LockReportedError):
                error = error_for_report(event.report)
                if isinstance(error, LockJammed) and seen:
                    self._publish(seen[-1])
                raise error

        return on_event

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
        try:
            watcher = await AdvertisementWatch.start(
                self.transport, self._on_advertisement, self.timeouts.step_s
            )
        except LockError as exc:
            logger.warning("cannot watch the lock's advertisements: %s", exc)
            return
        if self._closed:
            await watcher.stop()
            return
        self._watcher = watcher

    def _on_advertisement(self, adv: Advertisement) -> None:
        if adv.address != self.pairing.address.upper():
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

    def on_event(event: object) -> None:
        if isinstance(event, LockReportedError):
            raise error_for_report(event.report)

    # The link closes a driver's idle keyturner connection first: one connection per lock.
    link = LockLink(address, PAIRING, transport, timeouts, name)
    try:
        async with link.operation(linger=False):
            events = await link.run(client, on_event)
    except LinkLost:
        raise LockConnectionFailed(
            "the connection dropped during pairing; keep the lock in pairing mode and try again"
        ) from None
    except StepTimedOut:
        raise LockTimeout(
            "the lock stopped answering during pairing; is it still in pairing mode?"
        ) from None
    finally:
        await link.close()
    result = next(e.result for e in events if isinstance(e, Paired))
    return NukiPairing(
        address=address.upper(),
        auth_id=result.auth_id,
        shared_key=result.shared_key,
        app_id=result.app_id,
        lock_uuid=result.lock_uuid,
        name=name,
    )
