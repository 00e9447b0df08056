"""Fuzzing the Nuki frame codec (:mod:`ble.nuki`): garbage in, ``NukiProtocolError`` out.
Nothing else may escape the pure Nuki code, whatever a hostile or broken radio (a neighbour
with a radio, docs/threat-model.md) sends: plain and encrypted frames, their payloads, 20-byte
indication pieces, whole exchanges fed authentic frames with nonsense inside, and the
advertisements any device in range can broadcast. The virtual lock answers garbage with
Error Reports and never raises."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from ble.nuki.advertisement import in_pairing_mode, looks_like_nuki, new_state_flag
from ble.nuki.frames import (
    Command,
    encode_encrypted,
    encode_plain,
    encrypted_auth_id,
    encrypted_frame_length,
)
from ble.nuki.protocol import (
    FrameKind,
    IndicationReassembler,
    LockAction,
    LockActionExchange,
    NukiProtocolError,
    PairingClient,
    StatesRead,
    decode_encrypted,
    decode_message,
    decode_plain,
)
from ble.nuki.reassembly import is_plain_error_report
from ble.sim.lock import Indicate, VirtualNukiLock
from tests.fuzz.fuzzing import ANY_TEXT, FUZZ, only

KEY = bytes(range(32))
COMMANDS = st.sampled_from([int(c) for c in Command] + [0x0000, 0x7FFF, 0xFFFF])


@FUZZ
@given(st.binary(max_size=200))
def test_plain_decoding_raises_only_protocol_errors(data: bytes) -> None:
    decoded = only(NukiProtocolError, lambda: decode_plain(data))
    if decoded is not None:
        only(NukiProtocolError, lambda: decode_message(*decoded))


@FUZZ
@given(COMMANDS, st.binary(max_size=120))
def test_payload_decoding_raises_only_protocol_errors(command: int, payload: bytes) -> None:
    only(NukiProtocolError, lambda: decode_message(command, payload))


@FUZZ
@given(st.binary(max_size=200))
def test_encrypted_decoding_raises_only_protocol_errors(data: bytes) -> None:
    only(NukiProtocolError, lambda: decode_encrypted(KEY, data))
    only(NukiProtocolError, lambda: encrypted_auth_id(data))
    only(NukiProtocolError, lambda: encrypted_frame_length(data))
    assert is_plain_error_report(data) in (True, False)


@FUZZ
@given(COMMANDS, st.binary(max_size=80), st.binary(min_size=24, max_size=24))
def test_well_sealed_garbage_payloads_raise_only_protocol_errors(
    command: int, payload: bytes, nonce: bytes
) -> None:
    # Authentic frames (right key, right MAC) whose contents are nonsense.
    frame = encode_encrypted(KEY, 5, command, payload, nonce)
    exchange = LockActionExchange(KEY, 5, 1, LockAction.UNLOCK)
    exchange.start()
    only(NukiProtocolError, lambda: exchange.receive(frame))


@FUZZ
@given(st.lists(st.binary(min_size=1, max_size=20), max_size=12), st.sampled_from(FrameKind))
def test_reassembly_raises_only_protocol_errors(pieces: list[bytes], kind: FrameKind) -> None:
    reassembler = IndicationReassembler(kind)
    for piece in pieces:
        try:
            reassembler.feed(piece)
        except NukiProtocolError:
            assert reassembler.pending == 0


@FUZZ
@given(st.binary(max_size=150))
def test_exchanges_raise_only_protocol_errors(data: bytes) -> None:
    for exchange in (
        PairingClient(bytes(32), "x", 1),
        StatesRead(KEY, 5),
        LockActionExchange(KEY, 5, 1, LockAction.LOCK),
    ):
        exchange.start()
        only(NukiProtocolError, lambda exchange=exchange: exchange.receive(data))


@FUZZ
@given(COMMANDS, st.binary(max_size=120), st.binary(max_size=150), st.booleans())
def test_virtual_lock_answers_garbage_without_raising(
    command: int, payload: bytes, raw: bytes, pairing_mode: bool
) -> None:
    lock = VirtualNukiLock(bytes(32))
    lock.pairing_mode = pairing_mode
    link = lock.connect()
    for frame in (encode_plain(command, payload), raw):
        effects = link.write_pairing(frame)
        assert all(isinstance(e, Indicate) for e in effects)
    for frame in (raw, raw[:24] + struct.pack("<IH", 1, len(raw)) + raw[30:]):
        effects = link.write_usdio(frame)
        assert all(isinstance(e, Indicate) for e in effects)
    assert lock.authorizations == {}


@FUZZ
@given(COMMANDS, st.binary(max_size=120))
def test_pairing_fed_well_formed_plain_frames_raises_only_protocol_errors(
    command: int, payload: bytes
) -> None:
    """Frames with a right CRC, so the pairing client's payload decoders are reached."""
    client = PairingClient(bytes(32), "x", 1)
    client.start()
    for _ in range(3):
        if only(NukiProtocolError, lambda: client.receive(encode_plain(command, payload))) is None:
            break


@FUZZ
@given(
    st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=40), max_size=3),
    st.lists(ANY_TEXT, max_size=3),
)
def test_advertisements_of_any_device_in_range_never_raise(
    manufacturer_data: dict[int, bytes], service_uuids: list[str]
) -> None:
    assert new_state_flag(manufacturer_data) in (True, False, None)
    assert looks_like_nuki(service_uuids, manufacturer_data) in (True, False)
    assert in_pairing_mode(service_uuids) in (True, False)
