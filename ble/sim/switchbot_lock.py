"""The virtual SwitchBot Lock's brain: the lock's side of the SwitchBot Lock protocol, pure.

What it implements, as the original Lock or the Lock Pro (:mod:`ble.switchbot.models`): the
advertisement of OpenWonderLabs/SwitchBotAPI-BLE,
``devicetypes/lock.md`` ("Lock Broadcast Message": manufacturer data with the sequence
number, Lock Info and alarm bytes; SCAN_RSP service data with the device type and battery),
and the encrypted command layer of :mod:`ble.switchbot.frames`: the plain IV request, then
AES-128-CTR commands (lock info, basic info, notifications on, lock actions) from a key id
it knows. A motor that takes a configurable time, a door sensor, a battery, and the faults
the virtual Nuki has (a jammed bolt, the link dropped after an action, slow replies, garbled
replies).

Theory of operation, as the virtual Nuki (:mod:`ble.sim.lock`): :class:`VirtualSwitchBotLock`
is the physical lock; each BLE connection gets a :class:`SwitchBotLockLink`, which turns each
write into effects (:class:`Notify`, and :mod:`ble.sim.lock`'s :class:`RunMotor`,
:class:`DropLink`, :class:`Delay`) for the Bumble shell (:mod:`ble.sim.switchbot_peripheral`)
to carry out. Changes outside a write (the motor stopping, the door opened by hand) bump the
advertised sequence number and reach every link with notifications on through the shell.

What the published document does not say and the lock here does: a command from an unknown
key id, or one that does not decode, is answered ``0x00`` (error); an action towards the
position the bolt already has is answered and notified at once, without a motor run.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ble.sim.lock import Delay, DropLink, RunMotor
from ble.switchbot.advertisement import next_sequence
from ble.switchbot.frames import (
    IV_BYTES,
    NOTIFICATION,
    SwitchBotProtocolError,
    ctr,
    decode_request,
    encode_reply,
)
from ble.switchbot.messages import (
    MODE_CTR,
    BasicInfo,
    Command,
    LockInfo,
    Position,
    Result,
    SwitchBotAction,
    classify,
)
from ble.switchbot.models import SwitchBotModel

# At or below this the lock answers "OK, low battery" (0x06).
LOW_BATTERY_PERCENT = 20
DEFAULT_KEY_ID = 0x2A


@dataclass(frozen=True, slots=True)
class Notify:
    """Send ``frame`` as a notification on RX."""

    frame: bytes


Effect = Notify | RunMotor | DropLink | Delay


@dataclass(slots=True)
class SwitchBotFaults:
    """Faults to inject. Counters are one-shot budgets that each use decrements."""

    jam_motor: bool = False
    drop_link_on_action: int = 0
    reply_delay_s: float = 0.0
    #: Cut the next N replies (to ``garble_only`` commands, or any) to two bytes.
    garble_replies: int = 0
    garble_only: Command | None = None


@dataclass(frozen=True, slots=True)
class LoggedCommand:
    """One command the lock received and decoded: the evidence that an unlock left once."""

    command: Command
    action: SwitchBotAction | None = None


@dataclass(slots=True)
class _Motor:
    run: int
    action: SwitchBotAction


class VirtualSwitchBotLock:
    """A SwitchBot Lock that exists only in memory."""

    def __init__(
        self,
        mac: bytes = bytes.fromhex("C04E5B000001"),
        *,
        keys: dict[int, bytes] | None = None,
        model: SwitchBotModel = SwitchBotModel.LOCK,
        motor_seconds: float = 0.05,
        battery_percent: int = 87,
        firmware_tenths: int = 63,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.mac = mac
        self.model = model
        self.keys = keys if keys is not None else {DEFAULT_KEY_ID: random_bytes(16)}
        self.motor_seconds = motor_seconds
        self.battery_percent = battery_percent
        self.firmware_tenths = firmware_tenths
        self.calibrated = True
        self.position = Position.LOCKED
        self.door_open = False
        self.sequence = 1
        self.faults = SwitchBotFaults()
        self.command_log: list[LoggedCommand] = []
        self.random_bytes = random_bytes
        self._motor: _Motor | None = None
        self._runs = 0
        self._listeners: list[Callable[[], None]] = []

    # -- physical world ---------------------------------------------------------------
    def open_door(self) -> None:
        self.door_open = True
        self._changed()

    def close_door(self) -> None:
        self.door_open = False
        self._changed()

    def turn_knob(self, *, locked: bool) -> None:
        """Someone turned the thumb-turn by hand."""
        self.position = Position.LOCKED if locked else Position.UNLOCKED
        self._changed()

    def set_battery(self, percent: int) -> None:
        self.battery_percent = percent
        self._changed()

    def on_state_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    @property
    def info(self) -> LockInfo:
        return LockInfo(self.calibrated, self.position, self.door_open)

    @property
    def motor_running(self) -> bool:
        return self._motor is not None

    @property
    def key_id(self) -> int:
        return next(iter(self.keys))

    def count(self, command: Command, action: SwitchBotAction | None = None) -> int:
        return sum(
            1
            for logged in self.command_log
            if logged.command is command and (action is None or logged.action is action)
        )

    def command_counts(self) -> Counter[str]:
        return Counter(logged.command.value for logged in self.command_log)

    def connect(self) -> SwitchBotLockLink:
        return SwitchBotLockLink(self)

    def motor_done(self, run: int) -> None:
        """The motor has turned for its time: settle the bolt (or stick it)."""
        motor = self._motor
        if motor is None or motor.run != run:
            return
        self._motor = None
        if self.faults.jam_motor:
            locking = motor.action is SwitchBotAction.LOCK
            self.position = Position.LOCKING_STOP if locking else Position.UNLOCKING_STOP
        else:
            locking = motor.action is SwitchBotAction.LOCK
            self.position = Position.LOCKED if locking else Position.UNLOCKED
        self._changed()

    # -- persistence (the sim vendor keeps the lock across restarts) ---------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": "switchbot",
            "model": self.model.value,
            "mac": self.mac.hex(),
            "keys": {f"{key_id:02x}": key.hex() for key_id, key in self.keys.items()},
            "position": self.position.name,
            "door_open": self.door_open,
            "battery_percent": self.battery_percent,
            "sequence": self.sequence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> VirtualSwitchBotLock:
        lock = cls(
            bytes.fromhex(data["mac"]),
            keys={int(k, 16): bytes.fromhex(v) for k, v in data["keys"].items()},
            model=SwitchBotModel(data.get("model", SwitchBotModel.LOCK.value)),
            battery_percent=int(data["battery_percent"]),
            **kwargs,
        )
        position = Position[data["position"]]
        # A motor cannot be running in a file: a moving bolt is where it was going.
        lock.position = {
            Position.LOCKING: Position.LOCKED,
            Position.UNLOCKING: Position.UNLOCKED,
        }.get(position, position)
        lock.door_open = bool(data["door_open"])
        lock.sequence = int(data["sequence"])
        return lock

    # -- internals ------------------------------------------------------------------------
    def _changed(self) -> None:
        self.sequence = next_sequence(self.sequence)
        for listener in list(self._listeners):
            listener()

    def _start_motor(self, action: SwitchBotAction) -> RunMotor | None:
        target = Position.LOCKED if action is SwitchBotAction.LOCK else Position.UNLOCKED
        if self.position is target and self._motor is None:
            self._changed()  # nothing to turn; the lock still reports where it is
            return None
        self._runs += 1
        self._motor = _Motor(self._runs, action)
        self.position = Position.LOCKING if action is SwitchBotAction.LOCK else Position.UNLOCKING
        self._changed()
        return RunMotor(self.motor_seconds, self._runs)


class SwitchBotLockLink:
    """The lock's side of one BLE connection: its IV, its key id, notifications on or off."""

    def __init__(self, lock: VirtualSwitchBotLock) -> None:
        self.lock = lock
        self.key_id: int | None = None
        self.iv: bytes | None = None
        self.notifying = False
        self.connected = True

    def disconnected(self) -> None:
        self.connected = False
        self.notifying = False

    def notification(self) -> Notify:
        """The current Lock Info, as this link's notification (only once notifying)."""
        return Notify(self._encrypted(NOTIFICATION, self.lock.info.encode(self.lock.model), None))

    def write(self, data: bytes) -> list[Effect]:
        effects = self._answer(data)
        delay = self.lock.faults.reply_delay_s
        return [Delay(delay), *effects] if delay > 0 else effects

    def _answer(self, data: bytes) -> list[Effect]:
        lock = self.lock
        try:
            request = decode_request(data)
            if request.plain:
                command, _ = classify(request.body, lock.model)
                if command is not Command.IV:
                    raise SwitchBotProtocolError("not_encrypted", "a plain command")
                return self._iv_reply(request.body[-1])
            key = lock.keys.get(request.key_id)
            if key is None or request.key_id != self.key_id or self.iv is None:
                raise SwitchBotProtocolError("unknown_key", "a key id without an IV")
            if request.iv_head != self.iv[:2]:
                raise SwitchBotProtocolError("bad_iv", "another connection's IV")
            command, action = classify(ctr(key, self.iv, request.body), lock.model)
        except SwitchBotProtocolError:
            return [Notify(encode_reply(Result.ERROR))]
        lock.command_log.append(LoggedCommand(command, action))
        result = Result.OK_LOW_BATTERY if lock.battery_percent <= LOW_BATTERY_PERCENT else Result.OK
        if command is Command.LOCK_INFO:
            return [self._reply(command, result, lock.info.encode(lock.model))]
        if command is Command.BASIC_INFO:
            basic = BasicInfo(lock.battery_percent, lock.firmware_tenths)
            return [self._reply(command, result, basic.encode())]
        if command is Command.NOTIFICATIONS:
            self.notifying = True
            return [self._reply(command, result, b"")]
        assert action is not None
        return self._act(action, result)

    def _act(self, action: SwitchBotAction, result: Result) -> list[Effect]:
        lock = self.lock
        if lock.faults.drop_link_on_action > 0:
            # The command arrived and the motor turns, but the link drops before the reply.
            lock.faults.drop_link_on_action -= 1
            motor = lock._start_motor(action)
            return [*([motor] if motor else []), DropLink()]
        effects: list[Effect] = [self._reply(Command.ACTION, result, b"")]
        motor = lock._start_motor(action)
        if self.notifying:
            effects.append(self.notification())
        if motor is not None:
            effects.append(motor)
        return effects

    def _iv_reply(self, key_id: int) -> list[Effect]:
        if key_id not in self.lock.keys:
            return [Notify(encode_reply(Result.ERROR))]
        self.lock.command_log.append(LoggedCommand(Command.IV))
        if self.iv is None or self.key_id != key_id:
            self.key_id, self.iv = key_id, self.lock.random_bytes(IV_BYTES)
        frame = encode_reply(Result.OK, self.iv, header=bytes([0x00, MODE_CTR, 0x00]))
        return [Notify(self._garbled(Command.IV, frame))]

    def _reply(self, command: Command, result: Result, body: bytes) -> Notify:
        return Notify(self._garbled(command, self._encrypted(result, body, command)))

    def _encrypted(self, result: int, body: bytes, command: Command | None) -> bytes:
        assert self.iv is not None
        assert self.key_id is not None
        key = self.lock.keys[self.key_id]
        header = bytes([self.key_id]) + self.iv[:2]
        return encode_reply(result, ctr(key, self.iv, body), header=header)

    def _garbled(self, command: Command, frame: bytes) -> bytes:
        faults = self.lock.faults
        if faults.garble_replies > 0 and faults.garble_only in (None, command):
            faults.garble_replies -= 1
            return (frame + b"\x00")[:2]  # too short to be a reply
        return frame
