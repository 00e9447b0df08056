"""The SwitchBot Lock driver: :class:`ble.driver.LockDriver` for the SwitchBot Lock, running
the pure exchanges of :mod:`ble.switchbot.exchanges` over the vendor-neutral BLE link
(:mod:`ble.link`), the same way the Nuki driver does.

What is SwitchBot's here: the GATT channel (commands written to TX without response, replies
and notifications on RX; :mod:`ble.switchbot.gatt`), the owner's key id and encryption key
(:class:`SwitchBotCredentials`, from the vendor account; docs/locks.md), the mapping from
Lock Info to :class:`ble.driver.LockStatus`, and the rules every driver keeps
(docs/locks.md):

* the action frame is the point of no return: it is never sent twice. If the link drops, a
  step times out or a reply is unreadable after it left, the driver reads the state once
  and raises :class:`ble.errors.LockOutcomeUnknown` carrying what it found;
* a state read is retried once after an unreadable reply; actions never are;
* a stuck bolt (Lock Status "LockingStop"/"UnlockingStop") is published as ``jammed`` and
  raised as :class:`ble.errors.LockJammed`; a refused command is a typed error.

State changes nobody asked for (the door opening, the knob turned) are seen without polling:
the lock's advertisement carries a sequence number that moves whenever its state does
(:mod:`ble.switchbot.advertisement`). The advertisement itself is not authenticated, so a
subscriber's watcher only takes a new number as the cue to read the state over the encrypted
link, as the Nuki driver does with its beacon's flag.

Why not pySwitchbot, the library Home Assistant uses: it connects with
``establish_connection(BleakClientWithServiceCache, ...)`` and no ``backend=``, and bleak
picks its backend by platform with no public hook, so it cannot run over the Bumble backend
without patching it; and it retries commands after BLE errors by default. docs/locks.md
has the whole account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ble.driver import DoorState, LockState, LockStatus
from ble.errors import (
    LinkLost,
    LockConnectionFailed,
    LockError,
    LockJammed,
    LockNotAuthorized,
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
from ble.switchbot import advertisement, gatt
from ble.switchbot.exchanges import (
    ActionEnded,
    ActionExchange,
    CommandRefused,
    LockInfoNotified,
    Phase,
    StatusRead,
    StatusReceived,
    SwitchBotKey,
)
from ble.switchbot.frames import KEY_BYTES, SwitchBotProtocolError
from ble.switchbot.messages import LockInfo, Position, SwitchBotAction
from ble.switchbot.models import SwitchBotModel

logger = logging.getLogger(__name__)


def _hex_field(data: Mapping[str, Any], name: str, shape: str) -> bytes:
    try:
        return bytes.fromhex(str(data[name]))
    except ValueError:
        raise ValueError(f"{name} must be {shape}") from None


@dataclass(frozen=True, slots=True)
class SwitchBotCredentials:
    """A SwitchBot Lock's address with the key id and encryption key the vendor account
    issued for it (secret: keep it in a file of mode 0600, never in logs).

    ``to_json``/``from_json``: ``{"vendor": "switchbot", "address": ..., "key_id": "XX",
    "encryption_key": "<32 hex digits>", "model": "lock"}``, the key id and key as
    pySwitchbot's ``retrieve_encryption_key`` prints them; ``model`` is ``lock`` (the
    default) or ``lock-pro``.
    """

    address: str
    key_id: int
    encryption_key: bytes = field(repr=False)
    model: SwitchBotModel = SwitchBotModel.LOCK

    @property
    def key(self) -> SwitchBotKey:
        return SwitchBotKey(self.key_id, self.encryption_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor": "switchbot",
            "address": self.address,
            "key_id": f"{self.key_id:02x}",
            "encryption_key": self.encryption_key.hex(),
            "model": self.model.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SwitchBotCredentials:
        try:
            if data.get("vendor", "switchbot") != "switchbot":
                raise ValueError(f"written for a {data.get('vendor')!r} lock")
            key_id = _hex_field(data, "key_id", "two hex digits, not 00")
            if len(key_id) != 1 or key_id == b"\x00":
                raise ValueError("key_id must be two hex digits, not 00")
            key = _hex_field(data, "encryption_key", "32 hex digits")
            if len(key) != KEY_BYTES:
                raise ValueError("encryption_key must be 32 hex digits")
            model = SwitchBotModel(str(data.get("model", SwitchBotModel.LOCK.value)))
            return cls(str(data["address"]).upper(), key_id[0], key, model)
        except (KeyError, TypeError, ValueError) as exc:
            raise LockProtocolError(f"the SwitchBot key data is unusable ({exc})") from None


@dataclass(frozen=True, slots=True)
class SwitchBotTimeouts(LinkTimeouts):
    """The link's step bounds, plus ``motor_s``: the wait for the bolt to rest."""

    motor_s: float = 12.0

    def operation_budget_s(self) -> float:
        """The longest one driver call can take: an action (reach, IV, notifications on,
        the action, the motor) then, if its outcome is lost, a reconnect and a state read
        (IV, lock info, basic info)."""
        action = self.reach_s() + 3 * self.step_s + self.motor_s
        reread = self.reach_s() + 3 * self.step_s
        return action + reread


class WholeFrames:
    """SwitchBot frames fit one notification (20 bytes at most): each is a whole frame."""

    def feed(self, piece: bytes) -> list[bytes]:
        if not piece:
            raise SwitchBotProtocolError("short_frame", "an empty notification")
        return [piece]

    def reset(self) -> None:
        """Nothing is ever partial."""


# pySwitchbot, written against real locks, writes TX without response.
CHANNEL = Channel(gatt.RX, WholeFrames, write_characteristic=gatt.TX, write_response=False)


@dataclass(frozen=True, slots=True)
class FoundSwitchBot:
    address: str
    model: SwitchBotModel
    sequence: int
    battery_percent: int | None
    rssi: int | None


def status_from_info(
    info: LockInfo,
    battery_percent: int | None,
    battery_critical: bool,
    read_at: datetime | None = None,
) -> LockStatus:
    if not info.calibrated:
        lock = LockState.UNKNOWN  # lock.md: "This status is invalid when not calibrated"
    elif info.position.stuck:
        lock = LockState.JAMMED
    else:
        lock = {
            Position.LOCKED: LockState.LOCKED,
            Position.UNLOCKED: LockState.UNLOCKED,
            Position.LOCKING: LockState.LOCKING,
            Position.UNLOCKING: LockState.UNLOCKING,
            # The bolt is not fully out: the door is not secured.
            Position.NOT_FULLY_LOCKED: LockState.UNLOCKED,
            Position.HALF_LOCKED: LockState.UNLOCKED,
        }[info.position]
    return LockStatus(
        lock=lock,
        door=DoorState.OPEN if info.door_open else DoorState.CLOSED,
        battery_percent=battery_percent,
        battery_critical=battery_critical,
        read_at=read_at or datetime.now(UTC),
    )


def error_for_refusal(refused: CommandRefused) -> LockError:
    """The typed error for a command the lock answered with a failure result."""
    if refused.stage == Phase.AWAIT_IV.value:
        return LockNotAuthorized(
            "the lock does not accept this key id (the key was revoked or the lock reset); "
            "retrieve the key id and encryption key again from the SwitchBot account"
        )
    return LockProtocolError(
        f"the lock refused the command (result 0x{refused.result:02X} while "
        f"{refused.stage}); try again"
    )


async def scan_switchbot(transport: BleakTransport, scan_s: float = 5.0) -> list[FoundSwitchBot]:
    """SwitchBot Locks advertising nearby."""
    found: list[FoundSwitchBot] = []
    for adv in await discover(transport, scan_s):
        parsed = advertisement.decode(adv.manufacturer_data, adv.service_data)
        if parsed is not None:
            found.append(
                FoundSwitchBot(
                    adv.address, parsed.model, parsed.sequence, parsed.battery_percent, adv.rssi
                )
            )
    return sorted(found, key=lambda lock: lock.address)


class SwitchBotDriver(LinkedLockDriver):
    """A SwitchBot Lock, driven over the BLE link with the owner's key. Implements
    :class:`ble.driver.LockDriver`."""

    def __init__(
        self,
        credentials: SwitchBotCredentials,
        transport: BleakTransport | None = None,
        timeouts: SwitchBotTimeouts | None = None,
        name: str = "threshold",
    ) -> None:
        self.credentials = credentials
        self.transport = transport or BleakTransport()
        self.timeouts = timeouts or SwitchBotTimeouts()
        super().__init__(
            LockLink(credentials.address, CHANNEL, self.transport, self.timeouts, name)
        )
        self._last: LockStatus | None = None
        self._battery: int | None = None
        self._battery_low = False
        self._sequence: int | None = None
        self._stale = False

    # -- LockDriver ----------------------------------------------------------------------
    async def status(self) -> LockStatus:
        async with self._link.operation():
            try:
                return await self._read_status()
            except SwitchBotProtocolError:
                # Read-only: asking again cannot move the bolt.
                logger.info("unreadable SwitchBot state reply; asking once more")
                return await self._read_status()

    async def unlock(self) -> LockStatus:
        return await self._act(SwitchBotAction.UNLOCK)

    async def lock(self) -> LockStatus:
        return await self._act(SwitchBotAction.LOCK)

    async def unlatch(self) -> LockStatus:
        return await self._act(SwitchBotAction.UNLATCH)

    # -- operations ----------------------------------------------------------------------
    async def _read_status(self) -> LockStatus:
        exchange = StatusRead(self.credentials.key, self.credentials.model)
        try:
            events = await self._link.run(exchange, self._on_event)
        except LinkLost:
            raise LockConnectionFailed(
                "the connection to the lock dropped while reading its state; try again"
            ) from None
        except StepTimedOut:
            await self._link.drop()
            raise LockTimeout("the lock did not report its state in time") from None
        received = next(e for e in events if isinstance(e, StatusReceived))
        self._battery = received.basic.battery_percent
        self._battery_low = received.low_battery
        return self._publish(received.info)

    async def _act(self, action: SwitchBotAction) -> LockStatus:
        verb = action.name.lower()
        async with self._link.operation():
            exchange = ActionExchange(self.credentials.key, action, self.credentials.model)
            progress = ExchangeProgress()
            try:
                events = await self._link.run(
                    exchange,
                    self._on_event,
                    progress=progress,
                    committed_reply_s=self.timeouts.motor_s,
                )
            except (LinkLost, StepTimedOut, SwitchBotProtocolError) as exc:
                if not progress.committed:
                    raise self._before_action_error(exc, verb) from None
                raise await self._outcome_unknown(exc, verb) from None
            ended = next(e for e in events if isinstance(e, ActionEnded))
            self._battery_low |= ended.low_battery
            status = self._publish(ended.info)
            if ended.info.position.stuck:
                raise LockJammed(
                    "the lock's bolt is stuck: it is jammed; check that the door is fully "
                    "closed and nothing obstructs the bolt, then lock it by hand"
                )
            return status

    def _before_action_error(self, exc: LockError, verb: str) -> LockError:
        if isinstance(exc, SwitchBotProtocolError):
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
            status = await self._read_status()
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

    def _on_event(self, event: object) -> None:
        if isinstance(event, LockInfoNotified):
            self._publish(event.info)
        elif isinstance(event, CommandRefused):
            raise error_for_refusal(event)

    def _publish(self, info: LockInfo) -> LockStatus:
        status = status_from_info(info, self._battery, self._battery_low)
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
        if adv.address != self.credentials.address.upper():
            return
        parsed = advertisement.decode(
            adv.manufacturer_data, adv.service_data, self.credentials.model
        )
        if parsed is None:
            return
        previous, self._sequence = self._sequence, parsed.sequence
        if previous == parsed.sequence:
            return
        # The first advertisement heard counts as a change: subscribers start from a state
        # read, not from whatever happened before the watch began. A change during a read
        # may have come after the lock answered: read again after.
        self._stale = True
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self._refresh_status())

    async def _refresh_status(self) -> None:
        while self._stale and not self._closed:
            self._stale = False
            try:
                await self.status()
            except LockError as exc:
                logger.info("could not read the lock after it advertised a change: %s", exc)
