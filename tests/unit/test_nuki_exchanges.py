"""The client exchanges run against the virtual lock's pure state machine: no radio, just
frames cut into 20-byte indications and reassembled, as over the air."""

from __future__ import annotations

import json
from pathlib import Path

from ble.nuki.protocol import (
    ActionCompleted,
    Command,
    ErrorCode,
    FrameKind,
    IndicationReassembler,
    LockAction,
    LockActionExchange,
    LockReportedError,
    NukiLockState,
    Paired,
    PairingClient,
    PairingResult,
    SendFrame,
    StatesRead,
    StatesReceived,
    split_indications,
)
from ble.sim.lock import DropLink, Indicate, LockLink, RunMotor, VirtualNukiLock

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "nuki-ble.json").read_text())
CLIENT_PRIVATE = bytes.fromhex(VECTORS["client_private_key"])


def _run(
    link: LockLink, exchange: PairingClient | StatesRead | LockActionExchange, kind: FrameKind
) -> list[object]:
    """Drive ``exchange`` against ``link`` until it stops sending; returns every event."""
    reassembler = IndicationReassembler(kind)
    events: list[object] = list(exchange.start())
    queue = [e for e in events if isinstance(e, SendFrame)]
    while queue:
        frame = queue.pop(0).data
        write = link.write_pairing if kind is FrameKind.PLAIN else link.write_usdio
        effects = write(frame)
        for effect in effects:
            if isinstance(effect, RunMotor):
                effects += link.lock.motor_done(effect.run)
        for effect in effects:
            if isinstance(effect, Indicate):
                for piece in split_indications(effect.frame):
                    for complete in reassembler.feed(piece):
                        new = exchange.receive(complete)
                        events += new
                        queue += [e for e in new if isinstance(e, SendFrame)]
    return events


def _pair(lock: VirtualNukiLock) -> PairingResult:
    events = _run(lock.connect(), PairingClient(CLIENT_PRIVATE, "Threshold", 42), FrameKind.PLAIN)
    paired = [e for e in events if isinstance(e, Paired)]
    assert paired, events
    return paired[0].result


def test_pairing_with_the_documentation_lock_key() -> None:
    lock = VirtualNukiLock(bytes(32))
    lock.press_button_for_pairing()
    result = _pair(lock)
    assert result.shared_key == bytes.fromhex(VECTORS["shared_key"])
    assert lock.authorizations[result.auth_id].name == "Threshold"
    assert not lock.pairing_mode


def test_pairing_refused_outside_pairing_mode() -> None:
    lock = VirtualNukiLock()
    events = _run(lock.connect(), PairingClient(CLIENT_PRIVATE, "x", 1), FrameKind.PLAIN)
    errors = [e for e in events if isinstance(e, LockReportedError)]
    assert errors[0].report.known is ErrorCode.P_ERROR_NOT_PAIRING
    assert lock.authorizations == {}


def test_unlock_then_read_states() -> None:
    lock = VirtualNukiLock()
    lock.press_button_for_pairing()
    paired = _pair(lock)
    link = lock.connect()
    exchange = LockActionExchange(paired.shared_key, paired.auth_id, 42, LockAction.UNLOCK)
    events = _run(link, exchange, FrameKind.ENCRYPTED)
    completed = [e for e in events if isinstance(e, ActionCompleted)]
    assert completed[0].states is not None
    assert completed[0].states.lock_state is NukiLockState.UNLOCKED
    states = [
        e
        for e in _run(link, StatesRead(paired.shared_key, paired.auth_id), FrameKind.ENCRYPTED)
        if isinstance(e, StatesReceived)
    ]
    assert states[0].states.lock_state is NukiLockState.UNLOCKED
    assert lock.count(Command.LOCK_ACTION, LockAction.UNLOCK) == 1


def test_unknown_authorization_is_a_plain_not_authorized() -> None:
    lock = VirtualNukiLock()
    events = _run(lock.connect(), StatesRead(bytes(32), 77), FrameKind.ENCRYPTED)
    errors = [e for e in events if isinstance(e, LockReportedError)]
    assert errors[0].report.known is ErrorCode.K_ERROR_NOT_AUTHORIZED


def test_drop_link_fault_moves_the_motor_without_a_reply() -> None:
    lock = VirtualNukiLock()
    lock.press_button_for_pairing()
    paired = _pair(lock)
    lock.faults.drop_link_on_action = 1
    link = lock.connect()
    exchange = LockActionExchange(paired.shared_key, paired.auth_id, 42, LockAction.UNLOCK)
    (request,) = exchange.start()
    assert isinstance(request, SendFrame)
    reassembler = IndicationReassembler(FrameKind.ENCRYPTED)
    (challenge,) = [e for e in link.write_usdio(request.data) if isinstance(e, Indicate)]
    (action,) = exchange.receive(reassembler.feed(challenge.frame)[0])
    assert isinstance(action, SendFrame)
    effects = link.write_usdio(action.data)
    assert isinstance(effects[0], DropLink)
    assert lock.lock_state is NukiLockState.UNLOCKING


def test_state_survives_a_round_trip_through_its_file_form() -> None:
    lock = VirtualNukiLock()
    lock.press_button_for_pairing()
    paired = _pair(lock)
    lock.open_door()
    again = VirtualNukiLock.from_dict(json.loads(json.dumps(lock.to_dict())))
    assert again.authorizations == lock.authorizations
    assert again.door is lock.door
    assert again.public_key == lock.public_key
    assert again.authorizations[paired.auth_id].key == paired.shared_key


def test_pairing_client_refuses_a_lock_with_a_wrong_authenticator() -> None:
    import pytest

    from ble.nuki.protocol import AuthorizationId, NukiProtocolError, decode_plain, encode_plain

    lock = VirtualNukiLock()
    lock.press_button_for_pairing()
    link = lock.connect()
    client = PairingClient(CLIENT_PRIVATE, "x", 1)
    (frame,) = client.start()
    assert isinstance(frame, SendFrame)
    while True:
        (reply,) = [e for e in link.write_pairing(frame.data) if isinstance(e, Indicate)]
        command, payload = decode_plain(reply.frame)
        if command == Command.AUTHORIZATION_ID:
            forged = AuthorizationId.decode(payload)
            forged = AuthorizationId(bytes(32), forged.auth_id, forged.uuid, forged.nonce)
            with pytest.raises(NukiProtocolError) as info:
                client.receive(encode_plain(command, forged.encode()))
            assert info.value.reason == "bad_authenticator"
            return
        (frame,) = client.receive(reply.frame)
        assert isinstance(frame, SendFrame)
