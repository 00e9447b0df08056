"""Keyturner exchanges over the encrypted user-specific characteristic, client side, as
sans-IO state machines.

Nuki BLE API §10 "Command usage examples":

* Read states: client -> Request Data(Keyturner States); lock -> Keyturner States.
* Lock action: client -> Request Data(Challenge); lock -> Challenge(n);
  client -> Lock Action(action, app id, flags, n); lock -> Status ACCEPTED,
  Keyturner States (one or more, as the motor turns), Status COMPLETE.
* Read config (§6, Request Config): client -> Request Data(Challenge); lock ->
  Challenge(n); client -> Request Config(n); lock -> Config.

Every frame is encrypted with the pairing's shared key (§4) under a fresh 24-byte nonce.
The action frame is flagged ``is_action``: once it has been written, the outcome is unknown
until COMPLETE arrives, and the driver must read the state rather than send it again.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable

from ble.exchange import SendFrame
from ble.nuki.config import Config, RequestConfig
from ble.nuki.events import (
    ActionAccepted,
    ActionCompleted,
    ConfigReceived,
    Event,
    LockReportedError,
    StatesReceived,
)
from ble.nuki.frames import NONCE_24, NukiProtocolError, decode_encrypted, encode_encrypted
from ble.nuki.messages import (
    Challenge,
    ErrorReport,
    KeyturnerStates,
    LockAction,
    LockActionRequest,
    RequestData,
    Status,
    StatusCode,
    decode_message,
)
from ble.nuki.reassembly import is_plain_error_report


class ExchangePhase(enum.Enum):
    IDLE = "idle"
    AWAIT_STATES = "await_states"
    AWAIT_CHALLENGE = "await_challenge"
    AWAIT_CONFIG = "await_config"
    AWAIT_ACCEPTED = "await_accepted"
    AWAIT_COMPLETE = "await_complete"
    DONE = "done"
    FAILED = "failed"


class KeyturnerExchange:
    """Shared decoding: a reply must open under our key and carry our auth id."""

    def __init__(
        self, key: bytes, auth_id: int, random_bytes: Callable[[int], bytes] = os.urandom
    ) -> None:
        self._key = key
        self._auth_id = auth_id
        self._random = random_bytes
        self.phase = ExchangePhase.IDLE

    def _encrypt(self, command: int, payload: bytes) -> bytes:
        return encode_encrypted(self._key, self._auth_id, command, payload, self._random(NONCE_24))

    def _open(self, frame: bytes) -> object:
        if is_plain_error_report(frame):
            return ErrorReport.decode(frame[2:-2])
        auth_id, command, payload = decode_encrypted(self._key, frame)
        if auth_id != self._auth_id:
            raise NukiProtocolError("bad_auth_id", "reply for another authorization")
        return decode_message(command, payload)

    def _unexpected(self, message: object) -> NukiProtocolError:
        self.phase = ExchangePhase.FAILED
        return NukiProtocolError(
            "unexpected_message", f"{type(message).__name__} while {self.phase.value}"
        )

    @property
    def done(self) -> bool:
        return self.phase in (ExchangePhase.DONE, ExchangePhase.FAILED)


class StatesRead(KeyturnerExchange):
    """Request and receive Keyturner States: read-only, so safe to repeat."""

    def start(self) -> list[Event]:
        self.phase = ExchangePhase.AWAIT_STATES
        request = RequestData(KeyturnerStates.COMMAND)
        return [SendFrame(self._encrypt(request.COMMAND, request.encode()))]

    def receive(self, frame: bytes) -> list[Event]:
        message = self._open(frame)
        if isinstance(message, ErrorReport):
            self.phase = ExchangePhase.FAILED
            return [LockReportedError(message)]
        if self.phase is ExchangePhase.AWAIT_STATES and isinstance(message, KeyturnerStates):
            self.phase = ExchangePhase.DONE
            return [StatesReceived(message)]
        raise self._unexpected(message)


class ConfigRead(KeyturnerExchange):
    """Challenge, then Request Config, then Config: read-only, so safe to repeat."""

    def start(self) -> list[Event]:
        self.phase = ExchangePhase.AWAIT_CHALLENGE
        request = RequestData(Challenge.COMMAND)
        return [SendFrame(self._encrypt(request.COMMAND, request.encode()))]

    def receive(self, frame: bytes) -> list[Event]:
        message = self._open(frame)
        if isinstance(message, ErrorReport):
            self.phase = ExchangePhase.FAILED
            return [LockReportedError(message)]
        if self.phase is ExchangePhase.AWAIT_CHALLENGE and isinstance(message, Challenge):
            self.phase = ExchangePhase.AWAIT_CONFIG
            request = RequestConfig(message.nonce)
            return [SendFrame(self._encrypt(request.COMMAND, request.encode()))]
        if self.phase is ExchangePhase.AWAIT_CONFIG and isinstance(message, Config):
            self.phase = ExchangePhase.DONE
            return [ConfigReceived(message)]
        raise self._unexpected(message)


class LockActionExchange(KeyturnerExchange):
    """Challenge, then the action, then ACCEPTED, states and COMPLETE."""

    def __init__(
        self,
        key: bytes,
        auth_id: int,
        app_id: int,
        action: LockAction,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__(key, auth_id, random_bytes)
        self._app_id = app_id
        self.action = action
        self._last_states: KeyturnerStates | None = None

    @property
    def last_states(self) -> KeyturnerStates | None:
        return self._last_states

    def start(self) -> list[Event]:
        self.phase = ExchangePhase.AWAIT_CHALLENGE
        request = RequestData(Challenge.COMMAND)
        return [SendFrame(self._encrypt(request.COMMAND, request.encode()))]

    def receive(self, frame: bytes) -> list[Event]:
        message = self._open(frame)
        if isinstance(message, ErrorReport):
            self.phase = ExchangePhase.FAILED
            return [LockReportedError(message)]
        phase = self.phase
        if phase is ExchangePhase.AWAIT_CHALLENGE and isinstance(message, Challenge):
            self.phase = ExchangePhase.AWAIT_ACCEPTED
            action = LockActionRequest(self.action, self._app_id, 0, message.nonce)
            return [SendFrame(self._encrypt(action.COMMAND, action.encode()), is_action=True)]
        if isinstance(message, KeyturnerStates) and phase in (
            ExchangePhase.AWAIT_ACCEPTED,
            ExchangePhase.AWAIT_COMPLETE,
        ):
            self._last_states = message
            return [StatesReceived(message)]
        if phase is ExchangePhase.AWAIT_ACCEPTED and isinstance(message, Status):
            if message.status is StatusCode.ACCEPTED:
                self.phase = ExchangePhase.AWAIT_COMPLETE
                return [ActionAccepted()]
            # Some firmware completes short actions without an ACCEPTED first.
            self.phase = ExchangePhase.DONE
            return [ActionCompleted(self._last_states)]
        if (
            phase is ExchangePhase.AWAIT_COMPLETE
            and isinstance(message, Status)
            and message.status is StatusCode.COMPLETE
        ):
            self.phase = ExchangePhase.DONE
            return [ActionCompleted(self._last_states)]
        raise self._unexpected(message)
