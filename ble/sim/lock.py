"""The virtual Nuki lock's brain: the lock's side of the Nuki BLE protocol, pure.

Implements the smart lock's half of the Nuki Smart Lock Bluetooth API (v2.x): §10
"Authorize app" (pairing, only while pairing mode is on, as after holding the button),
§10 reading Keyturner States and performing a Lock Action with a fresh challenge per
command, §6 Request Config / Config (what clients ask on their first poll), §7 error reports
(encrypted whenever the lock holds the sender's key, plain only when it cannot encrypt).
The lock keeps an authorization table, a motor that takes a configurable time, a door
sensor, a battery, and faults a test can inject.

Theory of operation. :class:`VirtualNukiLock` is the physical lock; each BLE connection gets
a :class:`LockLink` from :meth:`VirtualNukiLock.connect`. A link turns each complete write
into a list of effects (:class:`Indicate`, :class:`RunMotor`, :class:`DropLink`,
:class:`Delay`); the Bumble shell (:mod:`ble.sim.peripheral`) carries them out. Nothing here
sleeps or does I/O: the motor "turns" when the shell calls :meth:`VirtualNukiLock.motor_done`.

About 540 lines because it is the whole lock side of the protocol (pairing, commands,
errors, motor, door, battery, faults) as one state machine; split, its invariants would be
checked across files.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nacl.bindings

from ble.nuki.config import Config, RequestConfig
from ble.nuki.frames import (
    NONCE_24,
    Command,
    NukiProtocolError,
    authenticator,
    authenticator_matches,
    crc16,
    decode_plain,
    encode_encrypted,
    encode_plain,
    encrypted_auth_id,
    open_encrypted,
    public_key,
    shared_key,
)
from ble.nuki.messages import (
    AuthorizationAuthenticator,
    AuthorizationData,
    AuthorizationId,
    AuthorizationIdConfirmation,
    Challenge,
    DoorSensorState,
    ErrorCode,
    ErrorReport,
    IdType,
    KeyturnerStates,
    LockAction,
    LockActionRequest,
    Message,
    NukiLockState,
    NukiState,
    PublicKey,
    RequestData,
    Status,
    StatusCode,
    Trigger,
    decode_message,
    decode_name,
)
from ble.nuki.models import STATES_TAIL, TRAITS, NukiModel

PAIRING = "pairing"
USDIO = "usdio"

# Battery level at or below which the lock reports "critical", as a Nuki does near 20 %.
CRITICAL_PERCENT = 20


@dataclass(frozen=True, slots=True)
class Indicate:
    """Indicate ``frame`` on ``characteristic`` (``pairing`` or ``usdio``), in pieces as
    large as the connection's MTU allows."""

    characteristic: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class RunMotor:
    """Turn the motor for ``seconds``, then call ``VirtualNukiLock.motor_done(run)``."""

    seconds: float
    run: int


@dataclass(frozen=True, slots=True)
class DropLink:
    """Disconnect this link now, without replying (fault injection)."""


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait ``seconds`` before carrying out the effects that follow (a slow lock)."""

    seconds: float


Effect = Indicate | RunMotor | DropLink | Delay


@dataclass(frozen=True, slots=True)
class Authorization:
    auth_id: int
    key: bytes = field(repr=False)
    name: str
    app_id: int
    id_type: IdType


@dataclass(frozen=True, slots=True)
class LoggedCommand:
    """One command the lock received: the test evidence that an unlock was sent once."""

    command: Command
    auth_id: int | None
    action: LockAction | None = None
    requested: int | None = None


@dataclass(slots=True)
class Faults:
    """Faults to inject. Counters are one-shot budgets that each use decrements."""

    jam_motor: bool = False
    drop_link_on_action: int = 0
    reply_delay_s: float = 0.0
    corrupt_crc_replies: int = 0
    corrupt_only: Command | None = None
    refuse_pairing: bool = False


@dataclass(slots=True)
class _Motor:
    run: int
    action: LockAction
    link: LockLink


class VirtualNukiLock:
    """A Nuki Smart Lock that exists only in memory."""

    def __init__(
        self,
        private_key: bytes | None = None,
        *,
        name: str | None = None,
        nuki_id: int = 0x5A000001,
        model: NukiModel = NukiModel.SMART_LOCK_3,
        motor_seconds: float = 0.05,
        battery_percent: int = 84,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.private_key = private_key if private_key is not None else random_bytes(32)
        self.public_key = public_key(self.private_key)
        self.nuki_id = nuki_id
        # A Nuki names itself after its Nuki ID (the sticker on its back): Nuki_1A2B3C4D.
        self.name = name if name is not None else f"Nuki_{nuki_id:08X}"
        self.model = model
        # What Config (0x0015) and the advertisement say about the hardware.
        self.traits = TRAITS[model]
        self.firmware = self.traits.firmware
        self.hardware = self.traits.hardware
        self.device_type = self.traits.device_type
        self.motor_seconds = motor_seconds
        self.battery_percent = battery_percent
        self.battery_forced_critical = False
        self.pairing_mode = False
        self.lock_state = NukiLockState.LOCKED
        self.door = DoorSensorState.DOOR_CLOSED
        self.trigger = 0
        self.last_action = 0
        self.authorizations: dict[int, Authorization] = {}
        self.next_auth_id = 1
        self.faults = Faults()
        self.command_log: list[LoggedCommand] = []
        self.new_state_available = False
        self.random_bytes = random_bytes
        self._clock = clock
        self._motor: _Motor | None = None
        self._runs = 0
        self._state_listeners: list[Callable[[], None]] = []

    # -- physical world ---------------------------------------------------------------
    def press_button_for_pairing(self) -> None:
        """Pairing mode on, as holding the lock's button for 5 s does."""
        self.pairing_mode = True
        self._notify()

    def leave_pairing_mode(self) -> None:
        self.pairing_mode = False
        self._notify()

    def open_door(self) -> None:
        self._set_door(DoorSensorState.DOOR_OPENED)

    def close_door(self) -> None:
        self._set_door(DoorSensorState.DOOR_CLOSED)

    def turn_knob(self, *, locked: bool) -> None:
        """Someone turned the knob inside (or a key outside): the bolt moves, no command."""
        self.lock_state = NukiLockState.LOCKED if locked else NukiLockState.UNLOCKED
        self.trigger = Trigger.MANUAL
        self._state_changed()

    def set_battery(self, percent: int, *, critical: bool | None = None) -> None:
        self.battery_percent = max(0, min(100, percent))
        self.battery_forced_critical = bool(critical)
        self._state_changed()

    def on_state_change(self, listener: Callable[[], None]) -> None:
        """``listener`` runs after every state change and whenever the "new state available"
        flag changes (the shell re-advertises)."""
        self._state_listeners.append(listener)

    def clear_new_state_flag(self) -> None:
        if self.new_state_available:
            self.new_state_available = False
            self._notify()

    def _notify(self) -> None:
        for listener in list(self._state_listeners):
            listener()

    @property
    def battery_critical(self) -> bool:
        return self.battery_forced_critical or self.battery_percent <= CRITICAL_PERCENT

    @property
    def motor_running(self) -> bool:
        return self._motor is not None

    def count(self, command: Command, action: LockAction | None = None) -> int:
        return sum(
            1
            for entry in self.command_log
            if entry.command is command and (action is None or entry.action is action)
        )

    def count_requests(self, requested: Command) -> int:
        """How many Request Data messages asked for ``requested`` (e.g. Keyturner States)."""
        return sum(
            1
            for entry in self.command_log
            if entry.command is Command.REQUEST_DATA and entry.requested == requested
        )

    def command_counts(self) -> Counter[str]:
        return Counter(
            entry.action.name if entry.action else entry.command.name for entry in self.command_log
        )

    def states(self) -> KeyturnerStates:
        return KeyturnerStates(
            nuki_state=NukiState.PAIRING_MODE if self.pairing_mode else NukiState.DOOR_MODE,
            lock_state=self.lock_state,
            trigger=self.trigger,
            time=self._clock().replace(microsecond=0),
            timezone_offset_min=0,
            battery_critical=self.battery_critical,
            battery_charging=False,
            battery_percent=self.battery_percent,
            last_lock_action=self.last_action,
            door_sensor=self.door,
            tail=STATES_TAIL,
        )

    def config(self) -> Config:
        return Config(
            nuki_id=self.nuki_id,
            name=self.name,
            time=self._clock().replace(microsecond=0),
            firmware=self.firmware,
            hardware=self.hardware,
            pairing_enabled=True,
            device_type=self.device_type,
            capabilities=0 if self.device_type is not None else None,
            has_keypad_v2=0 if self.traits.config_matter else None,
            matter_status=0 if self.traits.config_matter else None,
        )

    def connect(self) -> LockLink:
        return LockLink(self)

    def motor_done(self, run: int) -> list[Effect]:
        """The motor has turned for its time: settle the bolt and tell the commanding link."""
        motor = self._motor
        if motor is None or motor.run != run:
            return []
        self._motor = None
        if self.faults.jam_motor:
            self.lock_state = NukiLockState.MOTOR_BLOCKED
            self._state_changed()
            return motor.link.reply_many(
                [self.states(), ErrorReport(ErrorCode.K_ERROR_MOTOR_BLOCKED, Command.LOCK_ACTION)]
            )
        self.lock_state = {
            LockAction.UNLOCK: NukiLockState.UNLOCKED,
            LockAction.LOCK: NukiLockState.LOCKED,
            LockAction.UNLATCH: NukiLockState.UNLATCHED,
        }[motor.action]
        self._state_changed()
        return motor.link.reply_many([self.states(), Status(StatusCode.COMPLETE)])

    # -- persistence (for the CLI's --sim) ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "private_key": self.private_key.hex(),
            "name": self.name,
            "nuki_id": self.nuki_id,
            "model": self.model.value,
            "pairing_mode": self.pairing_mode,
            "lock_state": self.lock_state.name,
            "door": self.door.name,
            "battery_percent": self.battery_percent,
            "next_auth_id": self.next_auth_id,
            "authorizations": [
                {
                    "auth_id": a.auth_id,
                    "key": a.key.hex(),
                    "name": a.name,
                    "app_id": a.app_id,
                    "id_type": a.id_type.name,
                }
                for a in self.authorizations.values()
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> VirtualNukiLock:
        lock = cls(
            bytes.fromhex(data["private_key"]),
            name=data["name"],
            nuki_id=int(data.get("nuki_id", 0x5A000001)),
            model=NukiModel(data.get("model", NukiModel.SMART_LOCK_3.value)),
            **kwargs,
        )
        lock.pairing_mode = bool(data["pairing_mode"])
        lock.lock_state = NukiLockState[data["lock_state"]]
        if lock.lock_state in (NukiLockState.UNLOCKING, NukiLockState.LOCKING):
            lock.lock_state = NukiLockState.UNDEFINED  # the motor stopped with the process
        lock.door = DoorSensorState[data["door"]]
        lock.battery_percent = int(data["battery_percent"])
        lock.next_auth_id = int(data["next_auth_id"])
        for entry in data["authorizations"]:
            auth = Authorization(
                int(entry["auth_id"]),
                bytes.fromhex(entry["key"]),
                str(entry["name"]),
                int(entry["app_id"]),
                IdType[entry["id_type"]],
            )
            lock.authorizations[auth.auth_id] = auth
        return lock

    # -- internals ----------------------------------------------------------------------
    def _set_door(self, door: DoorSensorState) -> None:
        if door is not self.door:
            self.door = door
            self._state_changed()

    def _state_changed(self) -> None:
        self.new_state_available = True
        self._notify()

    def _start_motor(self, action: LockAction, link: LockLink) -> RunMotor:
        self._runs += 1
        self._motor = _Motor(self._runs, action, link)
        self.last_action = int(action)
        self.lock_state = {
            LockAction.UNLOCK: NukiLockState.UNLOCKING,
            LockAction.LOCK: NukiLockState.LOCKING,
            LockAction.UNLATCH: NukiLockState.UNLATCHING,
        }[action]
        self._state_changed()
        return RunMotor(self.motor_seconds, self._runs)


class LockLink:
    """One BLE connection to the virtual lock: its pairing progress and its challenge."""

    def __init__(self, lock: VirtualNukiLock) -> None:
        self.lock = lock
        self.connected = True
        self._auth_id: int | None = None
        self._challenge: bytes | None = None
        # pairing progress on this link
        self._client_public = b""
        self._key = b""
        self._nonces: list[bytes] = []
        self._client_nonce = b""
        self._pending: Authorization | None = None

    def disconnected(self) -> None:
        self.connected = False

    # -- pairing service (plain frames) -------------------------------------------------
    def write_pairing(self, data: bytes) -> list[Effect]:
        lock = self.lock
        try:
            command, payload = decode_plain(data)
            message = decode_message(command, payload)
        except NukiProtocolError as exc:
            return self._plain_error(_error_for(exc), 0)
        lock.command_log.append(LoggedCommand(command, None))
        if not lock.pairing_mode:
            return self._plain_error(ErrorCode.P_ERROR_NOT_PAIRING, command)
        if lock.faults.refuse_pairing:
            return self._plain_error(ErrorCode.P_ERROR_MAX_USER, command)
        return self._with_delay(self._pairing_step(command, message))

    def _pairing_step(self, command: Command, message: Message) -> list[Effect]:
        lock = self.lock
        if isinstance(message, RequestData) and message.requested == Command.PUBLIC_KEY:
            return self._plain(PublicKey(lock.public_key))
        if isinstance(message, PublicKey):
            self._client_public = message.key
            try:
                self._key = shared_key(lock.private_key, message.key)
            except NukiProtocolError:
                return self._plain_error(ErrorCode.P_ERROR_BAD_PARAMETER, command)
            return self._plain(self._new_pairing_challenge())
        if isinstance(message, AuthorizationAuthenticator) and self._nonces:
            expected = authenticator(
                self._key, self._client_public, lock.public_key, self._nonces[-1]
            )
            if not authenticator_matches(expected, message.authenticator):
                return self._plain_error(ErrorCode.P_ERROR_BAD_AUTHENTICATOR, command)
            return self._plain(self._new_pairing_challenge())
        if isinstance(message, AuthorizationData) and len(self._nonces) >= 2:
            expected = authenticator(self._key, message.signed_part(), self._nonces[-1])
            if not authenticator_matches(expected, message.authenticator):
                return self._plain_error(ErrorCode.P_ERROR_BAD_AUTHENTICATOR, command)
            self._client_nonce = message.nonce
            self._pending = Authorization(
                lock.next_auth_id,
                self._key,
                decode_name(message.name),
                message.app_id,
                message.id_type,
            )
            nonce = lock.random_bytes(32)
            self._nonces.append(nonce)
            uuid = lock.random_bytes(16)
            unsigned = AuthorizationId(b"", self._pending.auth_id, uuid, nonce)
            tag = authenticator(self._key, unsigned.signed_part(), self._client_nonce)
            return self._plain(AuthorizationId(tag, self._pending.auth_id, uuid, nonce))
        if isinstance(message, AuthorizationIdConfirmation) and self._pending is not None:
            expected = authenticator(
                self._key, struct.pack("<I", self._pending.auth_id), self._nonces[-1]
            )
            if message.auth_id != self._pending.auth_id or not authenticator_matches(
                expected, message.authenticator
            ):
                return self._plain_error(ErrorCode.P_ERROR_BAD_AUTHENTICATOR, command)
            lock.authorizations[self._pending.auth_id] = self._pending
            lock.next_auth_id += 1
            self._pending = None
            lock.leave_pairing_mode()
            return self._plain(Status(StatusCode.COMPLETE))
        return self._plain_error(ErrorCode.P_ERROR_BAD_PARAMETER, command)

    def _new_pairing_challenge(self) -> Challenge:
        nonce = self.lock.random_bytes(32)
        self._nonces.append(nonce)
        return Challenge(nonce)

    def _plain(self, message: Message) -> list[Effect]:
        return [Indicate(PAIRING, encode_plain(message.COMMAND, message.encode()))]

    def _plain_error(self, error: ErrorCode, command: int) -> list[Effect]:
        report = ErrorReport(error, command)
        return [Indicate(PAIRING, encode_plain(report.COMMAND, report.encode()))]

    # -- keyturner service (encrypted frames) ---------------------------------------------
    def write_usdio(self, data: bytes) -> list[Effect]:
        lock = self.lock
        try:
            auth_id = encrypted_auth_id(data)
        except NukiProtocolError:
            return self._usdio_plain_error(ErrorCode.ERROR_BAD_LENGTH, 0)
        authorization = lock.authorizations.get(auth_id)
        if authorization is None:
            lock.command_log.append(LoggedCommand(Command.REQUEST_DATA, auth_id))
            # Without a key the lock cannot encrypt: the refusal is a plain frame.
            return self._usdio_plain_error(ErrorCode.K_ERROR_NOT_AUTHORIZED, 0)
        self._auth_id = auth_id
        try:
            _, raw_command, payload = open_encrypted(authorization.key, data)
        except NukiProtocolError as exc:
            if exc.reason == "bad_mac":
                # The sender does not hold this authorization's key: it could not read an
                # encrypted answer, so the refusal is plain.
                return self._usdio_plain_error(ErrorCode.K_ERROR_NOT_AUTHORIZED, 0)
            return self.reply_many([ErrorReport(_error_for(exc), 0)])
        try:
            command = Command(raw_command)
            message = decode_message(command, payload)
        except (ValueError, NukiProtocolError) as exc:
            # The key is known: the lock's own error reports are encrypted (§7).
            error = (
                _error_for(exc) if isinstance(exc, NukiProtocolError) else ErrorCode.ERROR_UNKNOWN
            )
            return self.reply_many([ErrorReport(error, raw_command)])
        action = message.action if isinstance(message, LockActionRequest) else None
        requested = message.requested if isinstance(message, RequestData) else None
        lock.command_log.append(LoggedCommand(command, auth_id, action, requested))
        return self._with_delay(self._keyturner_step(command, message))

    def _keyturner_step(self, command: Command, message: Message) -> list[Effect]:
        lock = self.lock
        if isinstance(message, RequestData):
            if message.requested == Command.CHALLENGE:
                self._challenge = lock.random_bytes(32)
                return self.reply_many([Challenge(self._challenge)])
            if message.requested == Command.KEYTURNER_STATES:
                states = lock.states()
                lock.clear_new_state_flag()
                return self.reply_many([states])
            return self.reply_many([ErrorReport(ErrorCode.K_ERROR_BAD_PARAMETER, command)])
        if isinstance(message, RequestConfig):
            challenge, self._challenge = self._challenge, None
            if challenge is None or not authenticator_matches(challenge, message.nonce):
                return self.reply_many([ErrorReport(ErrorCode.K_ERROR_BAD_NONCE, command)])
            return self.reply_many([lock.config()])
        if isinstance(message, LockActionRequest):
            challenge, self._challenge = self._challenge, None
            if challenge is None or not authenticator_matches(challenge, message.nonce):
                return self.reply_many([ErrorReport(ErrorCode.K_ERROR_BAD_NONCE, command)])
            if lock.motor_running:
                return self.reply_many([ErrorReport(ErrorCode.K_ERROR_BUSY, command)])
            motor = lock._start_motor(message.action, self)
            if lock.faults.drop_link_on_action > 0:
                lock.faults.drop_link_on_action -= 1
                # The command reached the lock and the motor turns, but the reply is lost.
                return [DropLink(), motor]
            return [
                *self.reply_many([Status(StatusCode.ACCEPTED), lock.states()]),
                motor,
            ]
        return self.reply_many([ErrorReport(ErrorCode.K_ERROR_BAD_PARAMETER, command)])

    def reply_many(self, messages: list[Message]) -> list[Effect]:
        """Encrypt ``messages`` for this link's authorization (no-op once disconnected)."""
        if not self.connected or self._auth_id is None:
            return []
        authorization = self.lock.authorizations.get(self._auth_id)
        if authorization is None:
            return []
        effects: list[Effect] = []
        for message in messages:
            effects.append(Indicate(USDIO, self._encrypt(authorization, message)))
        return effects

    def _encrypt(self, authorization: Authorization, message: Message) -> bytes:
        faults = self.lock.faults
        nonce = self.lock.random_bytes(NONCE_24)
        if faults.corrupt_crc_replies > 0 and faults.corrupt_only in (None, message.COMMAND):
            faults.corrupt_crc_replies -= 1
            return _encrypt_with_bad_crc(authorization, message, nonce)
        return encode_encrypted(
            authorization.key, authorization.auth_id, message.COMMAND, message.encode(), nonce
        )

    def _usdio_plain_error(self, error: ErrorCode, command: int) -> list[Effect]:
        report = ErrorReport(error, command)
        return [Indicate(USDIO, encode_plain(report.COMMAND, report.encode()))]

    def _with_delay(self, effects: list[Effect]) -> list[Effect]:
        delay = self.lock.faults.reply_delay_s
        return [Delay(delay), *effects] if delay > 0 else effects


def _encrypt_with_bad_crc(authorization: Authorization, message: Message, nonce: bytes) -> bytes:
    """A reply whose secretbox is intact but whose inner CRC is wrong: what a corrupted
    buffer in the lock's firmware would produce, and what the client must treat as
    unreadable."""
    body = struct.pack("<IH", authorization.auth_id, message.COMMAND) + message.encode()
    pdata = body + struct.pack("<H", crc16(body) ^ 0x5A5A)
    sealed: bytes = nacl.bindings.crypto_secretbox(pdata, nonce, authorization.key)
    return nonce + struct.pack("<IH", authorization.auth_id, len(sealed)) + sealed


def _error_for(exc: NukiProtocolError) -> ErrorCode:
    if exc.reason == "bad_crc":
        return ErrorCode.ERROR_BAD_CRC
    if exc.reason == "bad_length":
        return ErrorCode.ERROR_BAD_LENGTH
    if exc.reason == "bad_mac":
        return ErrorCode.K_ERROR_NOT_AUTHORIZED
    return ErrorCode.ERROR_UNKNOWN
