"""The Nuki protocol codecs against the public documentation's worked example, byte for
byte, plus round trips and the pairing/action exchanges run against each other."""

from __future__ import annotations

import dataclasses
import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ble.nuki import gatt
from ble.nuki.config import Config, RequestConfig
from ble.nuki.frames import indication_bytes
from ble.nuki.protocol import (
    ActionAccepted,
    ActionCompleted,
    Command,
    DoorSensorState,
    ErrorReport,
    FrameKind,
    IndicationReassembler,
    KeyturnerStates,
    LockAction,
    LockActionExchange,
    LockActionRequest,
    LockReportedError,
    NukiLockState,
    NukiProtocolError,
    NukiState,
    SendFrame,
    Status,
    StatusCode,
    crc16,
    decode_encrypted,
    decode_message,
    decode_plain,
    encode_encrypted,
    encode_plain,
    public_key,
    shared_key,
    split_indications,
)

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "nuki-ble.json").read_text())
CLIENT_PRIVATE = bytes.fromhex(VECTORS["client_private_key"])
LOCK_PRIVATE = bytes.fromhex(VECTORS["lock_private_key"])
LOCK_PUBLIC = bytes.fromhex(VECTORS["lock_public_key"])
SHARED = bytes.fromhex(VECTORS["shared_key"])


def test_shared_key_matches_documentation() -> None:
    assert shared_key(CLIENT_PRIVATE, LOCK_PUBLIC) == SHARED


def test_shared_key_is_symmetric_with_lock_private_key() -> None:
    assert public_key(LOCK_PRIVATE) == LOCK_PUBLIC
    assert shared_key(LOCK_PRIVATE, public_key(CLIENT_PRIVATE)) == SHARED


def test_request_data_frame_and_crc_match_documentation() -> None:
    wire = bytes.fromhex(VECTORS["examples"][0]["wire"])
    assert encode_plain(Command.REQUEST_DATA, struct.pack("<H", Command.PUBLIC_KEY)) == wire
    assert crc16(wire[:-2]) == struct.unpack("<H", wire[-2:])[0]


def test_authenticator_frame_matches_documentation() -> None:
    from ble.nuki.frames import authenticator

    example = VECTORS["examples"][1]
    nonce = bytes.fromhex(example["challenge_nonce"])
    tag = authenticator(SHARED, public_key(CLIENT_PRIVATE), LOCK_PUBLIC, nonce)
    assert encode_plain(Command.AUTHORIZATION_AUTHENTICATOR, tag) == bytes.fromhex(example["wire"])


def test_crc_check_value() -> None:
    # CRC-16/CCITT-FALSE's published check value.
    assert crc16(b"123456789") == 0x29B1


def test_gatt_uuids_match_vectors() -> None:
    g = VECTORS["gatt"]
    assert g["pairing_service"] == gatt.PAIRING_SERVICE
    assert g["pairing_gdio"] == gatt.PAIRING_GDIO
    assert g["keyturner_service"] == gatt.KEYTURNER_SERVICE
    assert g["keyturner_gdio"] == gatt.KEYTURNER_GDIO
    assert g["keyturner_usdio"] == gatt.KEYTURNER_USDIO
    assert g["advertised_initialization_service"] == gatt.INITIALIZATION_SERVICE


def test_plain_frame_bad_crc_raises() -> None:
    frame = bytearray(encode_plain(Command.STATUS, b"\x00"))
    frame[-1] ^= 0x01
    with pytest.raises(NukiProtocolError) as info:
        decode_plain(bytes(frame))
    assert info.value.reason == "bad_crc"


def test_unknown_command_raises() -> None:
    with pytest.raises(NukiProtocolError) as info:
        decode_plain(encode_plain(0x7777, b""))
    assert info.value.reason == "unknown_command"


def test_encrypted_round_trip_and_layout() -> None:
    nonce = bytes(range(24))
    frame = encode_encrypted(SHARED, 0x01020304, Command.STATUS, b"\x01", nonce)
    assert frame[:24] == nonce
    assert frame[24:28] == bytes([4, 3, 2, 1])
    (length,) = struct.unpack("<H", frame[28:30])
    assert length == len(frame) - 30 == 16 + 4 + 2 + 1 + 2
    assert decode_encrypted(SHARED, frame) == (0x01020304, Command.STATUS, b"\x01")


def test_encrypted_tampering_is_a_bad_mac() -> None:
    frame = bytearray(encode_encrypted(SHARED, 7, Command.STATUS, b"\x00", bytes(24)))
    frame[-1] ^= 0x80
    with pytest.raises(NukiProtocolError) as info:
        decode_encrypted(SHARED, bytes(frame))
    assert info.value.reason == "bad_mac"


def test_encrypted_wrong_key_is_a_bad_mac() -> None:
    frame = encode_encrypted(SHARED, 7, Command.STATUS, b"\x00", bytes(24))
    with pytest.raises(NukiProtocolError) as info:
        decode_encrypted(bytes(32), frame)
    assert info.value.reason == "bad_mac"


def test_encrypted_truncated_is_a_bad_length() -> None:
    frame = encode_encrypted(SHARED, 7, Command.STATUS, b"\x00", bytes(24))
    with pytest.raises(NukiProtocolError) as info:
        decode_encrypted(SHARED, frame[:-1])
    assert info.value.reason == "bad_length"


def _states(**changes: object) -> KeyturnerStates:
    base = KeyturnerStates(
        nuki_state=NukiState.DOOR_MODE,
        lock_state=NukiLockState.LOCKED,
        trigger=0,
        time=datetime(2026, 11, 24, 21, 0, 5, tzinfo=UTC),
        timezone_offset_min=60,
        battery_critical=False,
        battery_charging=False,
        battery_percent=84,
        door_sensor=DoorSensorState.DOOR_CLOSED,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_keyturner_states_layout() -> None:
    raw = _states(lock_state=NukiLockState.MOTOR_BLOCKED, battery_critical=True).encode()
    assert len(raw) == KeyturnerStates.SIZE
    assert raw[0] == 0x02
    assert raw[1] == 0xFE
    assert struct.unpack_from("<H", raw, 3)[0] == 2026
    assert raw[12] == (42 << 2) | 1
    assert raw[18] == DoorSensorState.DOOR_CLOSED
    decoded = KeyturnerStates.decode(raw)
    assert decoded.lock_state is NukiLockState.MOTOR_BLOCKED
    assert decoded.battery_critical
    assert decoded.battery_percent == 84


def test_keyturner_states_before_firmware_2_has_no_door_sensor() -> None:
    raw = _states().encode()[:13]
    assert KeyturnerStates.decode(raw).door_sensor is DoorSensorState.UNAVAILABLE


def test_lock_action_codec() -> None:
    request = LockActionRequest(LockAction.UNLATCH, 0xDEADBEEF, 0, bytes(range(32)))
    raw = request.encode()
    assert raw[0] == 3
    assert raw[1:5] == bytes.fromhex("EFBEADDE")
    assert len(raw) == 38
    assert LockActionRequest.decode(raw) == request
    assert decode_message(Command.LOCK_ACTION, raw) == request


def test_error_report_codec() -> None:
    report = ErrorReport.decode(bytes([0x20, 0x0D, 0x00]))
    assert report.error == 0x20
    assert report.command == Command.LOCK_ACTION
    assert report.known is not None
    assert report.known.name == "K_ERROR_NOT_AUTHORIZED"


def test_reassembly_of_encrypted_indications() -> None:
    frame = encode_encrypted(SHARED, 9, Command.KEYTURNER_STATES, _states().encode(), bytes(24))
    pieces = split_indications(frame)
    assert all(len(p) <= 20 for p in pieces)
    assert len(pieces) > 3
    reassembler = IndicationReassembler(FrameKind.ENCRYPTED)
    out: list[bytes] = []
    for piece in pieces + split_indications(frame):
        out += reassembler.feed(piece)
    assert out == [frame, frame]
    assert reassembler.pending == 0


def test_reassembly_of_plain_indications() -> None:
    frame = encode_plain(Command.PUBLIC_KEY, LOCK_PUBLIC)
    reassembler = IndicationReassembler(FrameKind.PLAIN)
    out: list[bytes] = []
    for piece in split_indications(frame):
        out += reassembler.feed(piece)
    assert out == [frame]


def test_whole_message_indications_after_an_mtu_exchange() -> None:
    """A lock on a 247-byte MTU link sends each message in one indication of up to 244
    bytes (Core Vol 3, Part F, §3.4.7.2: ATT_MTU - 3); at the default MTU of 23, 20-byte
    pieces (Nuki BLE API §3). The reassembler takes both, even back to back."""
    assert indication_bytes(247) == 244
    assert indication_bytes(23) == 20
    assert indication_bytes(0) == 20
    frame = encode_encrypted(SHARED, 9, Command.KEYTURNER_STATES, _states().encode(), bytes(24))
    assert split_indications(frame, indication_bytes(247)) == [frame]
    plain = encode_plain(Command.PUBLIC_KEY, LOCK_PUBLIC)
    assert split_indications(plain, indication_bytes(185)) == [plain]
    reassembler = IndicationReassembler(FrameKind.ENCRYPTED)
    out: list[bytes] = []
    for piece in [frame, *split_indications(frame), frame]:
        out += reassembler.feed(piece)
    assert out == [frame, frame, frame]


def _lock_reply(command: int, payload: bytes, auth_id: int = 5) -> bytes:
    return encode_encrypted(SHARED, auth_id, command, payload, bytes(24))


def test_lock_action_exchange_sequence() -> None:
    exchange = LockActionExchange(SHARED, 5, 99, LockAction.UNLOCK)
    (first,) = exchange.start()
    assert isinstance(first, SendFrame)
    assert not first.is_action
    assert decode_encrypted(SHARED, first.data)[1:] == (Command.REQUEST_DATA, b"\x04\x00")
    (action,) = exchange.receive(_lock_reply(Command.CHALLENGE, bytes(range(32))))
    assert isinstance(action, SendFrame)
    assert action.is_action
    _, command, payload = decode_encrypted(SHARED, action.data)
    sent = decode_message(command, payload)
    assert isinstance(sent, LockActionRequest)
    assert sent.nonce == bytes(range(32))
    assert exchange.receive(_lock_reply(Command.STATUS, b"\x01")) == [ActionAccepted()]
    unlocked = _states(lock_state=NukiLockState.UNLOCKED)
    exchange.receive(_lock_reply(Command.KEYTURNER_STATES, unlocked.encode()))
    assert exchange.receive(_lock_reply(Command.STATUS, b"\x00")) == [ActionCompleted(unlocked)]
    assert exchange.done


def test_lock_action_exchange_reports_lock_errors() -> None:
    exchange = LockActionExchange(SHARED, 5, 99, LockAction.LOCK)
    exchange.start()
    events = exchange.receive(_lock_reply(Command.ERROR_REPORT, bytes([0x45, 0x0D, 0x00])))
    assert events == [LockReportedError(ErrorReport(0x45, 0x0D))]


def test_reply_for_another_auth_id_is_refused() -> None:
    exchange = LockActionExchange(SHARED, 5, 99, LockAction.LOCK)
    exchange.start()
    with pytest.raises(NukiProtocolError):
        exchange.receive(_lock_reply(Command.CHALLENGE, bytes(32), auth_id=6))


def test_status_codec() -> None:
    assert Status.decode(b"\x01").status is StatusCode.ACCEPTED
    with pytest.raises(NukiProtocolError):
        Status.decode(b"\x07")


def test_error_reports_map_to_typed_errors() -> None:
    from ble.errors import LockBusy, LockJammed, LockNotAuthorized, LockProtocolError
    from ble.nuki.errors import NukiBatteryTooLow, NukiPairingRefused, error_for_report
    from ble.nuki.messages import ErrorCode, ErrorReport

    def kind(code: int) -> type:
        return type(error_for_report(ErrorReport(code, Command.LOCK_ACTION)))

    assert kind(ErrorCode.K_ERROR_MOTOR_BLOCKED) is LockJammed
    assert kind(ErrorCode.K_ERROR_BUSY) is LockBusy
    assert kind(ErrorCode.K_ERROR_NOT_AUTHORIZED) is LockNotAuthorized
    assert kind(ErrorCode.P_ERROR_NOT_PAIRING) is NukiPairingRefused
    assert kind(ErrorCode.K_ERROR_VOLTAGE_TOO_LOW) is NukiBatteryTooLow
    assert kind(0x99) is LockProtocolError


def test_keyturner_states_map_to_lock_status() -> None:
    from ble.driver import DoorState, LockState
    from ble.nuki.driver import status_from_states

    def status(**changes: object) -> tuple[LockState, DoorState]:
        mapped = status_from_states(_states(**changes))
        return mapped.lock, mapped.door

    assert status(lock_state=NukiLockState.MOTOR_BLOCKED)[0] is LockState.JAMMED
    assert status(lock_state=NukiLockState.UNLATCHED)[0] is LockState.UNLOCKED
    assert status(lock_state=NukiLockState.UNLATCHING)[0] is LockState.UNLOCKING
    assert status(lock_state=NukiLockState.BOOT_RUN)[0] is LockState.UNKNOWN
    assert status(door_sensor=DoorSensorState.DOOR_OPENED)[1] is DoorState.OPEN
    assert status(door_sensor=DoorSensorState.DEACTIVATED)[1] is DoorState.UNKNOWN
    critical = status_from_states(_states(battery_critical=True, battery_percent=10))
    assert critical.battery_critical
    assert critical.battery_percent == 10


def test_operation_budget_covers_every_step() -> None:
    from ble.nuki.driver import NukiTimeouts

    t = NukiTimeouts(scan_s=1, connect_s=2, step_s=3, motor_s=4)
    # scan + connect (twice: the action, then the re-read), four steps, the motor, three
    # steps for the re-read, and a scan grace of 2 s each time.
    assert t.operation_budget_s() == (1 + 2 + 2) * 2 + 4 * 3 + 4 + 3 * 3


def test_config_layout_matches_the_documented_offsets() -> None:
    """Nuki BLE API §6, Config (0x0015); the offsets every client reads it by (e.g. the
    nubli library's RequestConfigCommand: name at 4, LED brightness at 48, year at 49,
    timezone offset at 56), 74 bytes up to the timezone id, device type appended by
    Smart Lock 3.0 and later."""
    when = datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC)
    config = Config(
        nuki_id=0x1A2B3C4D,
        name="Front door",
        time=when,
        firmware=(4, 2, 10),
        hardware=(9, 0),
        led_brightness=5,
        timezone_offset_min=-60,
        device_type=4,
        capabilities=1,
    )
    payload = config.encode()
    assert len(payload) == 76
    assert struct.unpack_from("<I", payload, 0) == (0x1A2B3C4D,)
    assert payload[4:36] == b"Front door".ljust(32, b"\0")
    assert payload[48] == 5
    assert struct.unpack_from("<HBBBBBh", payload, 49) == (2026, 12, 2, 1, 2, 3, -60)
    assert payload[66:69] == bytes([4, 2, 10])
    assert payload[69:71] == bytes([9, 0])
    assert struct.unpack_from("<H", payload, 72) == (0xFFFF,)
    assert payload[74:] == bytes([4, 1])
    assert Config.decode(payload) == config
    older = Config.decode(payload[:74])
    assert older.device_type is None
    assert older.name == "Front door"
    with pytest.raises(NukiProtocolError):
        Config.decode(payload[:73])
    assert RequestConfig.decode(bytes(32)).nonce == bytes(32)
    with pytest.raises(NukiProtocolError):
        RequestConfig.decode(bytes(31))
