"""The Nuki Smart Lock BLE protocol, pure: the one import other code needs.

This facade gathers the protocol's parts, each in its own module with the section of the
Nuki Smart Lock Bluetooth API (v2.x) it implements:

* :mod:`ble.nuki.frames`: §4 message format, CRC-CCITT, §5 encryption and key derivation;
* :mod:`ble.nuki.messages`: §6 command payloads, §7 error codes, §8 status codes;
* :mod:`ble.nuki.reassembly`: §3, indications (whole messages, or 20-byte pieces at the
  default MTU) reassembled into messages;
* :mod:`ble.nuki.pairing`: §10 "Authorize app", the pairing exchange;
* :mod:`ble.nuki.action`: §10 reading Keyturner States and performing a Lock Action.

No asyncio and no I/O anywhere below this module.
"""

from __future__ import annotations

from ble.exchange import SendFrame
from ble.nuki.action import ExchangePhase, LockActionExchange, StatesRead
from ble.nuki.events import (
    ActionAccepted,
    ActionCompleted,
    Event,
    LockReportedError,
    Paired,
    PairingResult,
    StatesReceived,
)
from ble.nuki.frames import (
    Command,
    NukiProtocolError,
    authenticator,
    crc16,
    decode_encrypted,
    decode_plain,
    encode_encrypted,
    encode_plain,
    public_key,
    shared_key,
    split_indications,
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
    NukiLockState,
    NukiState,
    PublicKey,
    RequestData,
    Status,
    StatusCode,
    decode_message,
)
from ble.nuki.pairing import PairingClient, PairingPhase
from ble.nuki.reassembly import FrameKind, IndicationReassembler

__all__ = [
    "ActionAccepted",
    "ActionCompleted",
    "AuthorizationAuthenticator",
    "AuthorizationData",
    "AuthorizationId",
    "AuthorizationIdConfirmation",
    "Challenge",
    "Command",
    "DoorSensorState",
    "ErrorCode",
    "ErrorReport",
    "Event",
    "ExchangePhase",
    "FrameKind",
    "IdType",
    "IndicationReassembler",
    "KeyturnerStates",
    "LockAction",
    "LockActionExchange",
    "LockActionRequest",
    "LockReportedError",
    "NukiLockState",
    "NukiProtocolError",
    "NukiState",
    "Paired",
    "PairingClient",
    "PairingPhase",
    "PairingResult",
    "PublicKey",
    "RequestData",
    "SendFrame",
    "StatesRead",
    "StatesReceived",
    "Status",
    "StatusCode",
    "authenticator",
    "crc16",
    "decode_encrypted",
    "decode_message",
    "decode_plain",
    "encode_encrypted",
    "encode_plain",
    "public_key",
    "shared_key",
    "split_indications",
]
