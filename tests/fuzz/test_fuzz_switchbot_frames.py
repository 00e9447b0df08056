"""Fuzzing the SwitchBot Lock codecs (:mod:`ble.switchbot`): garbage in,
``SwitchBotProtocolError`` out (or None for an advertisement that is not a lock's). Nothing
else may escape the pure SwitchBot code, whatever a hostile or broken radio sends: replies,
notifications, their encrypted bodies, whole exchanges fed nonsense at every step, and the
advertisements any device in range can broadcast. The virtual lock answers garbage with an
error result and never raises."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ble.sim.switchbot_lock import Notify, VirtualSwitchBotLock
from ble.switchbot import advertisement
from ble.switchbot.exchanges import ActionExchange, StatusRead, SwitchBotKey
from ble.switchbot.frames import (
    SwitchBotProtocolError,
    decode_reply,
    decode_request,
    encode_reply,
)
from ble.switchbot.gatt import COMPANY_ID, SERVICE_DATA_UUID
from ble.switchbot.messages import BasicInfo, IvReply, LockInfo, SwitchBotAction, classify
from ble.switchbot.models import SwitchBotModel
from tests.fuzz.fuzzing import FUZZ, only

KEY = SwitchBotKey(0x2A, bytes(range(16)))
IV = bytes(range(16))


MODELS = st.sampled_from(list(SwitchBotModel))


@FUZZ
@given(st.binary(max_size=40), MODELS)
def test_frame_and_body_decoding_raise_only_protocol_errors(
    data: bytes, model: SwitchBotModel
) -> None:
    reply = only(SwitchBotProtocolError, lambda: decode_reply(data))
    if reply is not None:
        only(SwitchBotProtocolError, lambda: IvReply.decode(reply.header, reply.body))
    only(SwitchBotProtocolError, lambda: decode_request(data))
    only(SwitchBotProtocolError, lambda: LockInfo.decode(data, model))
    only(SwitchBotProtocolError, lambda: BasicInfo.decode(data))
    only(SwitchBotProtocolError, lambda: classify(data, model))


@FUZZ
@given(
    st.sampled_from([StatusRead, ActionExchange]),
    MODELS,
    st.lists(st.binary(max_size=24), max_size=6),
)
def test_exchanges_fed_garbage_after_a_good_iv_raise_only_protocol_errors(
    kind: type[StatusRead] | type[ActionExchange], model: SwitchBotModel, frames: list[bytes]
) -> None:
    exchange = (
        StatusRead(KEY, model)
        if kind is StatusRead
        else ActionExchange(KEY, SwitchBotAction.UNLOCK, model)
    )
    exchange.start()
    exchange.receive(encode_reply(0x01, IV))
    for frame in frames:
        if exchange.done:
            break
        if only(SwitchBotProtocolError, lambda f=frame: exchange.receive(f)) is None:
            break


@FUZZ
@given(
    st.dictionaries(st.sampled_from([COMPANY_ID, 0x0059, 0x004C]), st.binary(max_size=16)),
    st.dictionaries(
        st.sampled_from([SERVICE_DATA_UUID, "0000fe95-0000-1000-8000-00805f9b34fb"]),
        st.binary(max_size=6),
    ),
)
def test_any_advertisement_decodes_or_is_not_a_lock(
    manufacturer: dict[int, bytes], service: dict[str, bytes]
) -> None:
    heard = advertisement.decode(manufacturer, service)
    only(SwitchBotProtocolError, lambda: advertisement.decode(manufacturer, {}, None))
    if heard is not None:
        assert 0 <= heard.sequence <= 255
        assert heard.battery_percent is None or 0 <= heard.battery_percent <= 127


@FUZZ
@given(MODELS, st.lists(st.binary(max_size=24), max_size=6))
def test_the_virtual_lock_answers_garbage_without_raising(
    model: SwitchBotModel, writes: list[bytes]
) -> None:
    lock = VirtualSwitchBotLock(model=model)
    link = lock.connect()
    for data in writes:
        effects = link.write(data)
        assert all(isinstance(e, Notify) for e in effects)
        for effect in effects:
            assert isinstance(effect, Notify)
            decode_reply(effect.frame)
    assert lock.command_log == [] or all(c.command.value != "action" for c in lock.command_log)
