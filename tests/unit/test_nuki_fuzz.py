"""Garbage in, NukiProtocolError out: nothing else may escape the pure Nuki code, whatever a
hostile or broken radio sends. The virtual lock answers garbage with Error Reports and never
raises."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from ble.nuki.frames import Command, encode_encrypted, encode_plain
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
from ble.sim.lock import Indicate, VirtualNukiLock

KEY = bytes(range(32))
COMMANDS = st.sampled_from([int(c) for c in Command] + [0x0000, 0x7FFF, 0xFFFF])


@given(st.binary(max_size=200))
def test_plain_decoding_raises_only_protocol_errors(data: bytes) -> None:
    try:
        command, payload = decode_plain(data)
        decode_message(command, payload)
    except NukiProtocolError:
        pass


@given(COMMANDS, st.binary(max_size=120))
def test_payload_decoding_raises_only_protocol_errors(command: int, payload: bytes) -> None:
    with contextlib.suppress(NukiProtocolError):
        decode_message(command, payload)


@given(st.binary(max_size=200))
def test_encrypted_decoding_raises_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(NukiProtocolError):
        decode_encrypted(KEY, data)


@given(COMMANDS, st.binary(max_size=80), st.binary(min_size=24, max_size=24))
def test_well_sealed_garbage_payloads_raise_only_protocol_errors(
    command: int, payload: bytes, nonce: bytes
) -> None:
    # Authentic frames (right key, right MAC) whose contents are nonsense.
    frame = encode_encrypted(KEY, 5, command, payload, nonce)
    exchange = LockActionExchange(KEY, 5, 1, LockAction.UNLOCK)
    exchange.start()
    with contextlib.suppress(NukiProtocolError):
        exchange.receive(frame)


@given(st.lists(st.binary(min_size=1, max_size=20), max_size=12), st.sampled_from(FrameKind))
def test_reassembly_raises_only_protocol_errors(pieces: list[bytes], kind: FrameKind) -> None:
    reassembler = IndicationReassembler(kind)
    for piece in pieces:
        try:
            reassembler.feed(piece)
        except NukiProtocolError:
            assert reassembler.pending == 0


@given(st.binary(max_size=150))
def test_exchanges_raise_only_protocol_errors(data: bytes) -> None:
    for exchange in (
        PairingClient(bytes(32), "x", 1),
        StatesRead(KEY, 5),
        LockActionExchange(KEY, 5, 1, LockAction.LOCK),
    ):
        exchange.start()
        with contextlib.suppress(NukiProtocolError):
            exchange.receive(data)


@settings(max_examples=60)
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
