"""Encrypting a backup to the owner: a sealed file key, then libsodium's secretstream.

docs/operations.md, "Backup and restore". A backup holds the gateway's keys, the locks'
pairings and the whole history, so only the owner may open it, and a replacement gateway is
made from it with the owner's root key in hand. The gateway knows only the owner's public
key, which is enough to encrypt.

Format ``threshold-backup/v1``::

    magic         "threshold-backup/v1\\n"                        20 bytes
    sealed key    crypto_box_seal(file key) to the owner's X25519  80 bytes
    stream header crypto_secretstream_xchacha20poly1305 header     24 bytes
    frames        u32 big-endian length || secretstream ciphertext, repeated

The file key is 32 random bytes, used once. Every frame is authenticated with the 124 header
bytes as additional data, so a header cannot be spliced onto another backup's frames; the last
frame carries the stream's FINAL tag, so a truncated file is refused rather than restored in
part, and bytes after it are refused too. A frame holds at most :data:`FRAME_BYTES` of
plaintext.

Why not one sealed box: a backup is megabytes to gigabytes (the clips), and a sealed box is
one message held in memory; secretstream is libsodium's construction for exactly this
(chunked, ordered, truncation-evident).

Pure: no I/O; callers feed and take bytes.
"""

from __future__ import annotations

import secrets
import struct

from nacl.bindings import (
    crypto_box_seal,
    crypto_box_seal_open,
    crypto_scalarmult_base,
    crypto_secretstream_xchacha20poly1305_ABYTES,
    crypto_secretstream_xchacha20poly1305_HEADERBYTES,
    crypto_secretstream_xchacha20poly1305_init_pull,
    crypto_secretstream_xchacha20poly1305_init_push,
    crypto_secretstream_xchacha20poly1305_pull,
    crypto_secretstream_xchacha20poly1305_push,
    crypto_secretstream_xchacha20poly1305_state,
    crypto_secretstream_xchacha20poly1305_TAG_FINAL,
    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
)
from nacl.exceptions import CryptoError
from nacl.exceptions import RuntimeError as NaclRuntimeError
from nacl.signing import SigningKey

from gateway.errors import GatewayError

MAGIC = b"threshold-backup/v1\n"
SEALED_KEY_BYTES = 32 + 48
HEADER_BYTES = len(MAGIC) + SEALED_KEY_BYTES + crypto_secretstream_xchacha20poly1305_HEADERBYTES
FRAME_BYTES = 64 * 1024
_LENGTH = struct.Struct(">I")
_MAX_FRAME = FRAME_BYTES + crypto_secretstream_xchacha20poly1305_ABYTES


class BackupSealError(GatewayError):
    """A backup cannot be opened: not a backup, not for this key, altered or cut short."""

    code = "backup_corrupt"


class NotABackup(BackupSealError):
    code = "not_a_backup"


class WrongOwnerKey(BackupSealError):
    code = "backup_wrong_key"


class BackupTruncated(BackupSealError):
    code = "backup_truncated"


class BackupSealer:
    """Encrypts one backup to the owner's Ed25519 public key, frame by frame."""

    def __init__(self, owner_public_key: bytes) -> None:
        file_key = secrets.token_bytes(32)
        recipient = crypto_sign_ed25519_pk_to_curve25519(owner_public_key)
        self._state = crypto_secretstream_xchacha20poly1305_state()
        stream_header = crypto_secretstream_xchacha20poly1305_init_push(self._state, file_key)
        self._header = MAGIC + crypto_box_seal(file_key, recipient) + stream_header
        self._finished = False

    @property
    def header(self) -> bytes:
        """The bytes that start the file (write them first)."""
        return self._header

    def frame(self, plaintext: bytes, *, final: bool = False) -> bytes:
        """One frame of at most :data:`FRAME_BYTES` of ``plaintext``; the last one ``final``."""
        if self._finished:
            raise BackupSealError("the backup was already finished")
        if len(plaintext) > FRAME_BYTES:
            raise ValueError(f"a frame holds at most {FRAME_BYTES} bytes")
        tag = (
            crypto_secretstream_xchacha20poly1305_TAG_FINAL
            if final
            else crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
        )
        sealed = crypto_secretstream_xchacha20poly1305_push(
            self._state, plaintext, self._header, tag
        )
        self._finished = final
        return _LENGTH.pack(len(sealed)) + sealed


class BackupOpener:
    """Opens a backup with the owner's secret key: feed it the file's bytes in any pieces."""

    def __init__(self, owner_key: SigningKey) -> None:
        self._secret = crypto_sign_ed25519_sk_to_curve25519(
            bytes(owner_key) + bytes(owner_key.verify_key)
        )
        self._public = crypto_scalarmult_base(self._secret)
        self._buffer = bytearray()
        self._header: bytes | None = None
        self._state = crypto_secretstream_xchacha20poly1305_state()
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    def feed(self, data: bytes) -> bytes:
        """The plaintext that ``data`` completes (possibly empty)."""
        self._buffer += data
        out = bytearray()
        if self._header is None:
            if len(self._buffer) < len(MAGIC):
                if not MAGIC.startswith(bytes(self._buffer)):
                    raise NotABackup("this is not a Threshold backup")
                return b""
            if not self._buffer.startswith(MAGIC):
                raise NotABackup("this is not a Threshold backup (or a newer format)")
            if len(self._buffer) < HEADER_BYTES:
                return b""
            self._open_header(bytes(self._buffer[:HEADER_BYTES]))
            del self._buffer[:HEADER_BYTES]
        while len(self._buffer) >= _LENGTH.size:
            if self._finished:
                raise BackupSealError("bytes follow the end of the backup")
            (length,) = _LENGTH.unpack_from(self._buffer)
            if not crypto_secretstream_xchacha20poly1305_ABYTES <= length <= _MAX_FRAME:
                raise BackupSealError("a frame of the backup has an impossible length")
            if len(self._buffer) < _LENGTH.size + length:
                break
            sealed = bytes(self._buffer[_LENGTH.size : _LENGTH.size + length])
            del self._buffer[: _LENGTH.size + length]
            out += self._open_frame(sealed)
        return bytes(out)

    def finish(self) -> None:
        """Call at the end of the file: refuses a backup that was cut short."""
        if not self._finished or self._buffer:
            raise BackupTruncated("the backup is cut short (its last part is missing)")

    def _open_header(self, header: bytes) -> None:
        sealed_key = header[len(MAGIC) : len(MAGIC) + SEALED_KEY_BYTES]
        try:
            file_key = crypto_box_seal_open(sealed_key, self._public, self._secret)
        except CryptoError:
            raise WrongOwnerKey("this backup was not made for this owner key") from None
        try:
            crypto_secretstream_xchacha20poly1305_init_pull(
                self._state, header[len(MAGIC) + SEALED_KEY_BYTES :], file_key
            )
        except (CryptoError, NaclRuntimeError, ValueError):
            raise BackupSealError("the backup's header is damaged") from None
        self._header = header

    def _open_frame(self, sealed: bytes) -> bytes:
        assert self._header is not None
        try:
            plaintext, tag = crypto_secretstream_xchacha20poly1305_pull(
                self._state, sealed, self._header
            )
        except (CryptoError, NaclRuntimeError, ValueError):
            raise BackupSealError("the backup was altered or damaged") from None
        if tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL:
            self._finished = True
        elif tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE:
            raise BackupSealError("the backup has a frame this version does not write")
        return plaintext
