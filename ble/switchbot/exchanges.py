"""SwitchBot Lock exchanges, client side, as sans-IO state machines (:class:`ble.exchange.
Exchange`), pure.

Every exchange opens with the plain IV request (the lock answers with the IV of this
connection and its cipher mode; :mod:`ble.switchbot.frames`), then:

* :class:`StatusRead`: lock info, then basic info (battery); read-only, safe to repeat;
* :class:`ActionExchange`: enable notifications, then the action (the point of no return,
  ``is_action``), its reply, then the lock's notifications until the bolt rests or sticks.

A notification (``0x0F``) can arrive at any time once notifications are on, a change by
hand during a lingering connection included; every exchange reports it as
:class:`LockInfoNotified` and goes on waiting for its reply.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ble.exchange import SendFrame
from ble.switchbot.frames import (
    SwitchBotProtocolError,
    ctr,
    decode_reply,
    encode_encrypted_request,
    encode_plain_request,
)
from ble.switchbot.messages import (
    BASIC_INFO,
    BasicInfo,
    IvReply,
    LockInfo,
    Position,
    Result,
    SwitchBotAction,
    action_request,
    iv_request,
    lock_info_request,
    notifications_request,
)
from ble.switchbot.models import SwitchBotModel


@dataclass(frozen=True, slots=True)
class SwitchBotKey:
    """The lock's key id and encryption key, as the vendor account issues them (secret)."""

    key_id: int
    key: bytes


@dataclass(frozen=True, slots=True)
class LockInfoNotified:
    """The lock notified a change (during an action, or by hand)."""

    info: LockInfo


@dataclass(frozen=True, slots=True)
class StatusReceived:
    info: LockInfo
    basic: BasicInfo
    low_battery: bool


@dataclass(frozen=True, slots=True)
class ActionEnded:
    """The bolt came to rest (or stuck) after the action; ``low_battery`` from its reply."""

    info: LockInfo
    low_battery: bool


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """The lock answered a command with a result other than OK."""

    stage: str
    result: int


class Phase(enum.Enum):
    AWAIT_IV = "await_iv"
    AWAIT_LOCK_INFO = "await_lock_info"
    AWAIT_BASIC_INFO = "await_basic_info"
    AWAIT_NOTIFICATIONS_ON = "await_notifications_on"
    AWAIT_ACTION_REPLY = "await_action_reply"
    AWAIT_REST = "await_rest"
    DONE = "done"
    FAILED = "failed"


_TARGETS = {
    SwitchBotAction.LOCK: (Position.LOCKED, Position.NOT_FULLY_LOCKED, Position.HALF_LOCKED),
    SwitchBotAction.UNLOCK: (Position.UNLOCKED, Position.NOT_FULLY_LOCKED),
    SwitchBotAction.UNLATCH: (Position.UNLOCKED, Position.NOT_FULLY_LOCKED),
}


class _Session:
    """The IV step and the decryption every exchange shares."""

    def __init__(self, key: SwitchBotKey, model: SwitchBotModel = SwitchBotModel.LOCK) -> None:
        self._key = key
        self.model = model
        self._iv: bytes | None = None
        self.phase = Phase.AWAIT_IV

    @property
    def done(self) -> bool:
        return self.phase in (Phase.DONE, Phase.FAILED)

    def start(self) -> Sequence[object]:
        self.phase = Phase.AWAIT_IV
        return [SendFrame(encode_plain_request(iv_request(self._key.key_id)))]

    def _send(self, body: bytes, *, is_action: bool = False) -> SendFrame:
        assert self._iv is not None
        frame = encode_encrypted_request(self._key.key_id, self._key.key, self._iv, body)
        return SendFrame(frame, is_action=is_action)

    def _refused(self, result: int) -> list[object]:
        stage, self.phase = self.phase.value, Phase.FAILED
        return [CommandRefused(stage, result)]

    def receive(self, frame: bytes) -> Sequence[object]:
        reply = decode_reply(frame)
        if self.phase is Phase.AWAIT_IV:
            if reply.notification:
                return []  # from before this exchange; it cannot be read without the IV
            if not Result.ok(reply.result):
                return self._refused(reply.result)
            self._iv = IvReply.decode(reply.header, reply.body).iv
            return self._after_iv()
        assert self._iv is not None
        body = ctr(self._key.key, self._iv, reply.body)
        if reply.notification:
            return self._notified(LockInfo.decode(body, self.model))
        if not Result.ok(reply.result):
            return self._refused(reply.result)
        return self._replied(reply.result, body)

    def _after_iv(self) -> list[object]:
        raise NotImplementedError

    def _notified(self, info: LockInfo) -> list[object]:
        return [LockInfoNotified(info)]

    def _replied(self, result: int, body: bytes) -> list[object]:
        raise NotImplementedError

    def _unexpected(self) -> SwitchBotProtocolError:
        phase, self.phase = self.phase, Phase.FAILED
        return SwitchBotProtocolError("unexpected_reply", f"a reply while {phase.value}")


class StatusRead(_Session):
    """IV, lock info, basic info: read-only."""

    def __init__(self, key: SwitchBotKey, model: SwitchBotModel = SwitchBotModel.LOCK) -> None:
        super().__init__(key, model)
        self._info: LockInfo | None = None
        self._low_battery = False

    def _after_iv(self) -> list[object]:
        self.phase = Phase.AWAIT_LOCK_INFO
        return [self._send(lock_info_request(self.model))]

    def _replied(self, result: int, body: bytes) -> list[object]:
        self._low_battery |= result == Result.OK_LOW_BATTERY
        if self.phase is Phase.AWAIT_LOCK_INFO:
            self._info = LockInfo.decode(body, self.model)
            self.phase = Phase.AWAIT_BASIC_INFO
            return [self._send(BASIC_INFO)]
        if self.phase is Phase.AWAIT_BASIC_INFO and self._info is not None:
            self.phase = Phase.DONE
            return [StatusReceived(self._info, BasicInfo.decode(body), self._low_battery)]
        raise self._unexpected()


class ActionExchange(_Session):
    """IV, notifications on, the action, its reply, then notifications until the bolt
    rests in the action's target position or sticks."""

    def __init__(
        self,
        key: SwitchBotKey,
        action: SwitchBotAction,
        model: SwitchBotModel = SwitchBotModel.LOCK,
    ) -> None:
        super().__init__(key, model)
        self.action = action
        self._low_battery = False
        self.last_info: LockInfo | None = None

    def _after_iv(self) -> list[object]:
        self.phase = Phase.AWAIT_NOTIFICATIONS_ON
        return [self._send(notifications_request(self.model))]

    def _replied(self, result: int, body: bytes) -> list[object]:
        self._low_battery |= result == Result.OK_LOW_BATTERY
        if self.phase is Phase.AWAIT_NOTIFICATIONS_ON:
            self.phase = Phase.AWAIT_ACTION_REPLY
            return [self._send(action_request(self.action, self.model), is_action=True)]
        if self.phase is Phase.AWAIT_ACTION_REPLY:
            self.phase = Phase.AWAIT_REST
            if self.last_info is not None and self._rests(self.last_info):
                # The lock notified the end before its reply: the action is over.
                self.phase = Phase.DONE
                return [ActionEnded(self.last_info, self._low_battery)]
            return []
        raise self._unexpected()

    def _rests(self, info: LockInfo) -> bool:
        return info.position.stuck or info.position in _TARGETS[self.action]

    def _notified(self, info: LockInfo) -> list[object]:
        events: list[object] = [LockInfoNotified(info)]
        if self.phase in (Phase.AWAIT_ACTION_REPLY, Phase.AWAIT_REST):
            self.last_info = info
        if self.phase is Phase.AWAIT_REST and self._rests(info):
            self.phase = Phase.DONE
            events.append(ActionEnded(info, self._low_battery))
        return events
