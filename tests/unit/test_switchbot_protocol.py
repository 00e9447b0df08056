"""The SwitchBot Lock codecs against SwitchBot's published BLE document
(OpenWonderLabs/SwitchBotAPI-BLE, ``devicetypes/lock.md``, "Lock Broadcast Message", and the
README's "UUID Update Notes"), the AES-128-CTR layer against a keystream computed
independently (AES-ECB of the counter blocks), and the exchanges against the virtual lock's
pure core."""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ble.exchange import SendFrame
from ble.sim.lock import DropLink, RunMotor
from ble.sim.switchbot_lock import Notify, VirtualSwitchBotLock
from ble.switchbot import advertisement
from ble.switchbot.exchanges import (
    ActionEnded,
    ActionExchange,
    CommandRefused,
    LockInfoNotified,
    StatusRead,
    StatusReceived,
    SwitchBotKey,
)
from ble.switchbot.frames import (
    SwitchBotProtocolError,
    ctr,
    decode_reply,
    encode_encrypted_request,
    encode_plain_request,
    encode_reply,
)
from ble.switchbot.gatt import COMPANY_ID, SERVICE_DATA_UUID
from ble.switchbot.messages import (
    BasicInfo,
    IvReply,
    LockInfo,
    Position,
    SwitchBotAction,
    iv_request,
)
from ble.switchbot.models import SwitchBotModel

MAC = bytes.fromhex("C04E5B000001")
KEY = bytes(range(16))
IV = bytes(range(0xA0, 0xB0))


# -- lock.md, "Lock Broadcast Message" ----------------------------------------------------
def test_the_advertising_packet_has_the_documented_layout() -> None:
    """ADV AD Structure: flags 02 01 06; manufacturer data (type 0xFF) under company ID
    0x0969; the MAC; the sequence number; Lock Info; the alarm byte; a reserved byte.

    The table gives the MAC as "Byte 7~13" and the sequence number as Byte 14; a MAC is six
    bytes (7-12), and real locks put the sequence number right after it (byte 13), where
    pySwitchbot, written against real locks, reads it (the cross-check in
    tests/integration/test_switchbot_over_bleak.py): the table's Bytes 14-17 are bytes
    13-16 of the packet."""
    info = LockInfo(calibrated=True, position=Position.UNLOCKED, door_open=True)
    data = advertisement.advertising_data(MAC, 7, info)
    assert data[0:3] == bytes([0x02, 0x01, 0x06])
    assert data[4] == 0xFF
    assert data[5:7] == struct.pack("<H", 0x0969)
    assert data[7:13] == MAC
    assert data[13] == 7
    assert data[14] == 0b1001_0100  # calibrated, 001b unlocked, door opened
    assert data[3] == len(data) - 4  # the AD length counts its type and data


def test_lock_info_bits_are_the_documented_ones() -> None:
    """Byte 15: Bit7 calibration, Bit6-4 lock status (000b locked ... 110b not fully
    locked), Bit2 door (1 opened). Byte 16: Bit5 unclosed-door alarm, Bit4 unlocked alarm,
    Bit1 auto-lock paused."""
    documented = {
        0b000: Position.LOCKED,
        0b001: Position.UNLOCKED,
        0b010: Position.LOCKING,
        0b011: Position.UNLOCKING,
        0b100: Position.LOCKING_STOP,
        0b101: Position.UNLOCKING_STOP,
        0b110: Position.NOT_FULLY_LOCKED,
    }
    for bits, position in documented.items():
        assert LockInfo.decode(bytes([0x80 | bits << 4, 0])).position is position
    info = LockInfo.decode(bytes([0b1000_0100, 0b0011_0010]))
    flags = (info.calibrated, info.door_open, info.unclosed_alarm, info.unlocked_alarm)
    assert flags == (True, True, True, True)
    assert info.auto_lock_paused
    assert info.encode() == bytes([0b1000_0100, 0b0011_0010])
    assert not LockInfo.decode(bytes([0x00, 0x00])).calibrated
    with pytest.raises(SwitchBotProtocolError):
        LockInfo.decode(bytes([0b0111_0000, 0]))  # 111b is not a status
    with pytest.raises(SwitchBotProtocolError):
        LockInfo.decode(b"\x80")


def test_the_scan_response_carries_the_device_type_and_battery() -> None:
    """SCAN RSP AD Structure: service data (0x16) under 0xFD3D; Byte 0 Bit6-0 device type,
    'o' (0x6F); Byte 2 Bit6-0 battery 0-100 %."""
    data = advertisement.scan_response_data(64)
    assert data[1] == 0x16
    assert data[2:4] == struct.pack("<H", 0xFD3D)
    assert data[4] == ord("o")
    assert data[6] == 64
    assert SERVICE_DATA_UUID == "0000fd3d-0000-1000-8000-00805f9b34fb"


def test_decoding_an_advertisement() -> None:
    info = LockInfo(calibrated=True, position=Position.LOCKED, door_open=False)
    manufacturer = {COMPANY_ID: advertisement.manufacturer_payload(MAC, 200, info)}
    # Bit 7 of the type and battery bytes is reserved: ignored.
    service = {SERVICE_DATA_UUID: bytes([0x80 | 0x6F, 0x00, 0x80 | 42])}
    heard = advertisement.decode(manufacturer, service)
    assert heard == advertisement.LockAdvertisement(SwitchBotModel.LOCK, MAC, 200, info, 42)
    assert advertisement.decode(manufacturer, {}) is not None  # before the scan response
    assert advertisement.decode(manufacturer, {SERVICE_DATA_UUID: b"H\x00\x40"}) is None  # a Bot
    assert advertisement.decode({0x004C: b"\x02\x15"}, {}) is None
    assert advertisement.decode({COMPANY_ID: MAC}, {}) is None


def test_the_sequence_number_runs_1_to_255_and_skips_0() -> None:
    """Byte 14: "1~255 increases, 256 overflow is 1"."""
    assert advertisement.next_sequence(1) == 2
    assert advertisement.next_sequence(254) == 255
    assert advertisement.next_sequence(255) == 1


def test_the_lock_pro_layout_is_the_one_pyswitchbot_reads() -> None:
    """The Lock Pro ('$') is not in lock.md. Its layout is pySwitchbot's (written against
    real Lock Pros; the same parser checks the virtual Lock Pro's advertisement in
    tests/integration/test_switchbot_over_bleak.py): status in bits 6-3 of Lock Info byte
    0, the door in bit 4 of byte 1, the alarms in byte 5; in the advertisement the battery
    follows Lock Info's first two bytes."""
    pro = SwitchBotModel.LOCK_PRO
    info = LockInfo(True, Position.UNLOCKING, door_open=True, unclosed_alarm=True)
    assert info.encode(pro) == bytes([0x80 | 0b0011 << 3, 0x10, 0, 0, 0, 0x80])
    assert LockInfo.decode(info.encode(pro), pro) == info
    half = LockInfo.decode(bytes([0x80 | 0b0111 << 3, 0, 0, 0, 0, 0]), pro)
    assert half.position is Position.HALF_LOCKED
    with pytest.raises(SwitchBotProtocolError):
        LockInfo.decode(bytes([0x80 | 0b1000 << 3, 0, 0, 0, 0, 0]), pro)
    with pytest.raises(SwitchBotProtocolError):
        LockInfo.decode(info.encode(), pro)  # the original Lock's two bytes
    payload = advertisement.manufacturer_payload(MAC, 9, info, 77, pro)
    assert len(payload) == 12
    assert (payload[6], payload[9]) == (9, 77)
    service = {SERVICE_DATA_UUID: advertisement.service_payload(77, pro)}
    assert service[SERVICE_DATA_UUID][0] == ord("$")
    heard = advertisement.decode({COMPANY_ID: payload}, service)
    assert heard == advertisement.LockAdvertisement(pro, MAC, 9, info, 77)


# -- the encrypted command layer ------------------------------------------------------------
def test_ctr_is_aes_of_the_counter_blocks_from_the_iv() -> None:
    data = bytes(range(40))  # three blocks: the counter goes past the IV's last byte
    keystream = b""
    for block in range(3):
        counter = (int.from_bytes(IV, "big") + block).to_bytes(16, "big")
        ecb = Cipher(algorithms.AES128(KEY), modes.ECB()).encryptor()
        keystream += ecb.update(counter) + ecb.finalize()
    expected = bytes(a ^ b for a, b in zip(data, keystream, strict=False))
    assert ctr(KEY, IV, data) == expected
    assert ctr(KEY, IV, expected) == data


def test_request_frames() -> None:
    assert encode_plain_request(iv_request(0x2A)) == bytes.fromhex("570000000f21032a")
    frame = encode_encrypted_request(0x2A, KEY, IV, bytes.fromhex("0f4f8101"))
    assert frame[:4] == bytes([0x57, 0x2A]) + IV[:2]
    assert ctr(KEY, IV, frame[4:]) == bytes.fromhex("0f4f8101")
    with pytest.raises(SwitchBotProtocolError):
        encode_encrypted_request(0, KEY, IV, b"\x02")


def test_replies_and_the_iv_reply() -> None:
    assert decode_reply(b"\x01").result == 1
    for short in (b"", b"\x01\x00", b"\x01\x00\x00"):
        with pytest.raises(SwitchBotProtocolError):
            decode_reply(short)
    reply = decode_reply(encode_reply(0x01, IV, header=bytes([0, 0, 0])))
    assert IvReply.decode(reply.header, reply.body).iv == IV
    gcm = decode_reply(encode_reply(0x01, IV[:12] + b"\x00" * 4, header=bytes([0, 1, 0])))
    with pytest.raises(SwitchBotProtocolError) as info:
        IvReply.decode(gcm.header, gcm.body)
    assert info.value.reason == "unsupported_mode"
    assert BasicInfo.decode(b"\x57\x3f") == BasicInfo(87, 63)
    with pytest.raises(SwitchBotProtocolError):
        BasicInfo.decode(b"\xc8\x00")  # 200 %


# -- exchanges against the virtual lock's pure core ---------------------------------------
def run(exchange: StatusRead | ActionExchange, lock: VirtualSwitchBotLock) -> list[object]:
    """Drive ``exchange`` against one link of ``lock``; the motor finishes at once."""
    link = lock.connect()
    events: list[object] = list(exchange.start())
    sent = 0
    while sent < len(events):
        event = events[sent]
        sent += 1
        if not isinstance(event, SendFrame):
            continue
        for effect in link.write(event.data):
            if isinstance(effect, RunMotor):
                lock.motor_done(effect.run)
                if link.notifying:
                    events += exchange.receive(link.notification().frame)
            elif isinstance(effect, Notify):
                events += exchange.receive(effect.frame)
            elif isinstance(effect, DropLink):
                return events
    return events


@pytest.mark.parametrize("model", list(SwitchBotModel))
def test_a_status_read(model: SwitchBotModel) -> None:
    lock = VirtualSwitchBotLock(MAC, battery_percent=64, model=model)
    key = SwitchBotKey(lock.key_id, lock.keys[lock.key_id])
    events = run(StatusRead(key, model), lock)
    (received,) = [e for e in events if isinstance(e, StatusReceived)]
    assert received.info.position is Position.LOCKED
    assert received.basic.battery_percent == 64
    assert not received.low_battery


@pytest.mark.parametrize("model", list(SwitchBotModel))
def test_an_unlock_ends_when_the_bolt_rests(model: SwitchBotModel) -> None:
    lock = VirtualSwitchBotLock(MAC, model=model)
    key = SwitchBotKey(lock.key_id, lock.keys[lock.key_id])
    exchange = ActionExchange(key, SwitchBotAction.UNLOCK, model)
    events = run(exchange, lock)
    actions = [e for e in events if isinstance(e, SendFrame) and e.is_action]
    assert len(actions) == 1
    notified = [e.info.position for e in events if isinstance(e, LockInfoNotified)]
    assert notified == [Position.UNLOCKING, Position.UNLOCKED]
    assert events[-1] == ActionEnded(LockInfo(True, Position.UNLOCKED, False), False)
    assert exchange.done


def test_a_lock_pro_refuses_the_original_locks_commands() -> None:
    lock = VirtualSwitchBotLock(MAC, model=SwitchBotModel.LOCK_PRO)
    key = SwitchBotKey(lock.key_id, lock.keys[lock.key_id])
    events = run(StatusRead(key, SwitchBotModel.LOCK), lock)
    assert events[-1] == CommandRefused("await_lock_info", 0x00)


def test_an_unknown_key_id_is_refused_before_anything_is_sent() -> None:
    lock = VirtualSwitchBotLock(MAC)
    key = SwitchBotKey(lock.key_id + 1, KEY)
    events = run(ActionExchange(key, SwitchBotAction.UNLOCK), lock)
    assert events[-1] == CommandRefused("await_iv", 0x00)
    assert not any(isinstance(e, SendFrame) and e.is_action for e in events)


def test_a_wrong_encryption_key_is_refused() -> None:
    """CTR has no integrity check: the lock refuses a body that does not decode."""
    lock = VirtualSwitchBotLock(MAC)
    key = SwitchBotKey(lock.key_id, bytes(16))
    events = run(StatusRead(key), lock)
    assert events[-1] == CommandRefused("await_lock_info", 0x00)
