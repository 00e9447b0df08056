"""SwitchBot Lock command frames and their AES-128-CTR layer, pure.

SwitchBot's BLE documentation (OpenWonderLabs/SwitchBotAPI-BLE) publishes the lock's
advertisement but not its encrypted command layer; what follows is the framing every
SwitchBot lock client uses (read in pySwitchbot's ``SwitchbotEncryptedDevice``, written
against real locks), restated here:

* a **request** is ``0x57``, the key id (one byte), two header bytes, then the command body.
  A plain request (the IV request) carries ``00 00 00`` there; an encrypted one carries the
  first two bytes of the connection's IV and the body encrypted with AES-128-CTR under the
  lock's 16-byte encryption key, the counter starting at the IV for every message;
* a **reply** is a result byte (:class:`ble.switchbot.messages.Result`), three bytes clients
  do not read, then the body, encrypted the same way (a bare result byte when there is no
  body);
* a **notification** the lock sends on its own (a bolt moving, a door opening, once
  notifications are enabled) has ``0x0F`` where a reply has its result, then the same layout.

CTR has no integrity check: a reply under a wrong key decrypts to noise, so every body is
checked for shape by its decoder and anything else is a :class:`SwitchBotProtocolError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ble.errors import LockProtocolError

MAGIC = 0x57
NOTIFICATION = 0x0F
KEY_BYTES = 16
IV_BYTES = 16
HEADER_BYTES = 4
PLAIN_HEADER = b"\x00\x00\x00"


class SwitchBotProtocolError(LockProtocolError):
    """A frame that is not a valid SwitchBot Lock message. ``reason`` is stable and
    machine-readable (``short_frame``, ``bad_magic``, ``bad_body``, ...)."""

    code: ClassVar[str] = "lock_protocol_error"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(
            f"the lock sent a message that could not be understood ({detail}); "
            "move the gateway closer to the lock and try again"
        )
        self.reason = reason
        self.detail = detail


def ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CTR with the counter block starting at ``iv``: encrypts and decrypts."""
    if len(key) != KEY_BYTES or len(iv) != IV_BYTES:
        raise SwitchBotProtocolError("bad_key", "key and IV must be 16 bytes each")
    if not data:
        return b""
    cipher = Cipher(algorithms.AES128(key), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


@dataclass(frozen=True, slots=True)
class Request:
    """A request as the lock receives it: ``body`` is still encrypted unless ``plain``."""

    key_id: int
    iv_head: bytes
    body: bytes

    @property
    def plain(self) -> bool:
        return self.key_id == 0 and self.iv_head == b"\x00\x00"


def encode_plain_request(body: bytes) -> bytes:
    return bytes([MAGIC]) + PLAIN_HEADER + body


def encode_encrypted_request(key_id: int, key: bytes, iv: bytes, body: bytes) -> bytes:
    if not 0 < key_id <= 0xFF:
        raise SwitchBotProtocolError("bad_key_id", "the key id must be 1 to 255")
    return bytes([MAGIC, key_id]) + iv[:2] + ctr(key, iv, body)


def decode_request(frame: bytes) -> Request:
    if len(frame) < HEADER_BYTES + 1:
        raise SwitchBotProtocolError("short_frame", f"a {len(frame)}-byte request")
    if frame[0] != MAGIC:
        raise SwitchBotProtocolError("bad_magic", f"a request starting 0x{frame[0]:02X}")
    return Request(frame[1], bytes(frame[2:4]), bytes(frame[4:]))


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply or notification as the client receives it; ``body`` is still encrypted."""

    result: int
    header: bytes
    body: bytes

    @property
    def notification(self) -> bool:
        return self.result == NOTIFICATION


def encode_reply(result: int, body: bytes = b"", header: bytes = PLAIN_HEADER) -> bytes:
    if not body:
        return bytes([result])
    return bytes([result]) + header[:3].ljust(3, b"\x00") + body


def decode_reply(frame: bytes) -> Reply:
    if not frame:
        raise SwitchBotProtocolError("short_frame", "an empty reply")
    if len(frame) == 1:
        return Reply(frame[0], b"", b"")
    if len(frame) < HEADER_BYTES:
        raise SwitchBotProtocolError("short_frame", f"a {len(frame)}-byte reply")
    return Reply(frame[0], bytes(frame[1:4]), bytes(frame[4:]))
