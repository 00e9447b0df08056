"""Nuki BLE frames: the CRC, the plain and encrypted message formats, the key derivation.

Implements the Nuki Smart Lock Bluetooth API (v2.x):

* §4 "Message Format": a plain frame is ``command u16 LE | payload | CRC u16 LE``; an
  encrypted frame is ``ADATA | PDATA`` with ADATA = ``nonce[24] | auth_id u32 | length u16``
  and PDATA = ``secretbox(auth_id u32 | command u16 | payload | CRC u16)``. ``length`` counts
  the secretbox output, MAC included.
* §4 "CRC calculation": CRC-CCITT, polynomial 0x1021, initial remainder 0xFFFF, not
  reflected, appended little-endian.
* §5 "Encryption": the long-term shared key is ``crypto_box_beforenm`` (X25519 then
  HSalsa20); messages are XSalsa20-Poly1305 ``crypto_secretbox``; pairing messages carry
  HMAC-SHA256 authenticators keyed with the shared key.

Pure: no I/O, no asyncio. Every malformed input raises :class:`NukiProtocolError` and
nothing else, which the fuzz tests assert.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from typing import ClassVar

import nacl.bindings
import nacl.exceptions

from ble.errors import LockProtocolError

NONCE_24 = 24
NONCE_32 = 32
KEY_BYTES = 32
MAC_BYTES = 16
ADATA_BYTES = NONCE_24 + 4 + 2
CRC_BYTES = 2
# With the default ATT MTU of 23 an indication carries at most 23 - 3 = 20 bytes (§3's
# examples, "max size is 20 Bytes"); after a larger MTU is negotiated a lock sends up to
# MTU - 3 bytes per indication (Core Vol 3, Part F, §3.4.7.2), a whole message as a rule.
INDICATION_BYTES = 20
ATT_HEADER_BYTES = 3


class NukiProtocolError(LockProtocolError):
    """A frame that is not a valid Nuki message: bad CRC, bad MAC, wrong length, unknown
    command. ``reason`` is stable and machine-readable (``bad_crc``, ``bad_mac``, ...)."""

    code: ClassVar[str] = "lock_protocol_error"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(
            f"the lock sent a message that could not be understood ({detail}); "
            "move the gateway closer to the lock and try again"
        )
        self.reason = reason
        self.detail = detail


class Command(enum.IntEnum):
    """Command identifiers (§6 "Commands") this implementation speaks."""

    REQUEST_DATA = 0x0001
    PUBLIC_KEY = 0x0003
    CHALLENGE = 0x0004
    AUTHORIZATION_AUTHENTICATOR = 0x0005
    AUTHORIZATION_DATA = 0x0006
    AUTHORIZATION_ID = 0x0007
    KEYTURNER_STATES = 0x000C
    LOCK_ACTION = 0x000D
    STATUS = 0x000E
    ERROR_REPORT = 0x0012
    REQUEST_CONFIG = 0x0014
    CONFIG = 0x0015
    AUTHORIZATION_ID_CONFIRMATION = 0x001E


def command_of(value: int) -> Command:
    try:
        return Command(value)
    except ValueError:
        raise NukiProtocolError("unknown_command", f"unknown command 0x{value:04X}") from None


def crc16(data: bytes) -> int:
    """CRC-CCITT (0x1021, init 0xFFFF, not reflected) over ``data``."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<H", crc16(body))


def _check_crc(frame: bytes) -> bytes:
    """Return ``frame`` without its CRC, or raise when the CRC does not match."""
    if len(frame) < 2 + CRC_BYTES:
        raise NukiProtocolError("bad_length", f"frame of {len(frame)} bytes is too short")
    body, (crc,) = frame[:-CRC_BYTES], struct.unpack("<H", frame[-CRC_BYTES:])
    if crc16(body) != crc:
        raise NukiProtocolError("bad_crc", "CRC mismatch")
    return body


def shared_key(client_private: bytes, lock_public: bytes) -> bytes:
    """The long-term key both sides derive at pairing (§5): ``crypto_box_beforenm``."""
    if len(client_private) != KEY_BYTES or len(lock_public) != KEY_BYTES:
        raise NukiProtocolError("bad_length", "keys are 32 bytes")
    try:
        key: bytes = nacl.bindings.crypto_box_beforenm(lock_public, client_private)
    except nacl.exceptions.CryptoError as exc:  # a low-order public key
        raise NukiProtocolError("bad_key", "the public key is not usable") from exc
    return key


def public_key(private: bytes) -> bytes:
    """The X25519 public key for ``private`` (32 bytes)."""
    if len(private) != KEY_BYTES:
        raise NukiProtocolError("bad_length", "keys are 32 bytes")
    key: bytes = nacl.bindings.crypto_scalarmult_base(private)
    return key


def authenticator(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 over the concatenated ``parts``: the pairing authenticators of §6."""
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def authenticator_matches(expected: bytes, received: bytes) -> bool:
    return hmac.compare_digest(expected, received)


def encode_plain(command: int, payload: bytes) -> bytes:
    """An unencrypted frame (pairing service): ``command | payload | CRC``."""
    return _with_crc(struct.pack("<H", command) + payload)


def decode_plain(frame: bytes) -> tuple[Command, bytes]:
    """Check the CRC and split a plain frame into its command and payload."""
    body = _check_crc(frame)
    (command,) = struct.unpack("<H", body[:2])
    return command_of(command), body[2:]


def encode_encrypted(key: bytes, auth_id: int, command: int, payload: bytes, nonce: bytes) -> bytes:
    """An encrypted frame (keyturner service, §4). ``nonce`` must never repeat under ``key``;
    callers pass 24 fresh random bytes."""
    if len(nonce) != NONCE_24:
        raise NukiProtocolError("bad_length", "the message nonce is 24 bytes")
    if len(key) != KEY_BYTES:
        raise NukiProtocolError("bad_length", "the shared key is 32 bytes")
    pdata = _with_crc(struct.pack("<IH", auth_id, command) + payload)
    sealed: bytes = nacl.bindings.crypto_secretbox(pdata, nonce, key)
    return nonce + struct.pack("<IH", auth_id, len(sealed)) + sealed


def encrypted_auth_id(frame: bytes) -> int:
    """The clear-text authorization id of an encrypted frame: the lock uses it to pick the key
    before it can decrypt."""
    if len(frame) < ADATA_BYTES:
        raise NukiProtocolError("bad_length", f"encrypted frame of {len(frame)} bytes")
    (auth_id,) = struct.unpack_from("<I", frame, NONCE_24)
    return int(auth_id)


def encrypted_frame_length(header: bytes) -> int:
    """Total length of an encrypted frame, from its first :data:`ADATA_BYTES`."""
    if len(header) < ADATA_BYTES:
        raise NukiProtocolError("bad_length", "encrypted header is 30 bytes")
    (length,) = struct.unpack_from("<H", header, NONCE_24 + 4)
    if length < MAC_BYTES + 4 + 2 + CRC_BYTES:
        raise NukiProtocolError("bad_length", f"encrypted length {length} is too short")
    return ADATA_BYTES + int(length)


def open_encrypted(key: bytes, frame: bytes) -> tuple[int, int, bytes]:
    """Open an encrypted frame: returns ``(auth_id, command, payload)`` with the command as
    sent, known to this implementation or not (a lock answers an unknown one with an Error
    Report naming it).

    Raises on a wrong length, a bad MAC (wrong key or tampering), a CRC mismatch or an auth
    id that differs between ADATA and PDATA.
    """
    if len(key) != KEY_BYTES:
        raise NukiProtocolError("bad_length", "the shared key is 32 bytes")
    if len(frame) != encrypted_frame_length(frame):
        raise NukiProtocolError("bad_length", "length field does not match the frame")
    nonce = frame[:NONCE_24]
    outer_auth_id = encrypted_auth_id(frame)
    try:
        pdata: bytes = nacl.bindings.crypto_secretbox_open(frame[ADATA_BYTES:], nonce, key)
    except nacl.exceptions.CryptoError:
        raise NukiProtocolError("bad_mac", "authentication failed") from None
    body = _check_crc(pdata)
    if len(body) < 6:
        raise NukiProtocolError("bad_length", "encrypted body too short")
    inner_auth_id, command = struct.unpack("<IH", body[:6])
    if inner_auth_id != outer_auth_id:
        raise NukiProtocolError("bad_auth_id", "authorization ids disagree")
    return int(inner_auth_id), int(command), body[6:]


def decode_encrypted(key: bytes, frame: bytes) -> tuple[int, int, bytes]:
    """Open an encrypted frame of a known command: returns ``(auth_id, command, payload)``.

    Raises as :func:`open_encrypted` does, and on an unknown command.
    """
    auth_id, command, payload = open_encrypted(key, frame)
    return auth_id, int(command_of(command)), payload


def indication_bytes(att_mtu: int) -> int:
    """The largest indication value on a link with ``att_mtu``: MTU - 3, at least 20."""
    return max(INDICATION_BYTES, att_mtu - ATT_HEADER_BYTES)


def split_indications(frame: bytes, size: int = INDICATION_BYTES) -> list[bytes]:
    """Cut a frame into the pieces a lock indicates, ``size`` bytes at most each (20 on a
    link with the default MTU; see :func:`indication_bytes`)."""
    if size < 1:
        raise ValueError("an indication carries at least one byte")
    return [frame[i : i + size] for i in range(0, len(frame), size)]
