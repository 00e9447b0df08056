"""C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature), the Ed25519 type 0x04.

A cosignature is a note signature on a checkpoint whose signed bytes are::

    cosignature/v1
    time <POSIX seconds>
    <the checkpoint's note text, with its final newline>

and whose signature is ``u64 timestamp (big-endian) || Ed25519 signature`` ("Format",
"Ed25519 signed message"). The key ID is SHA-256(name || 0x0A || 0x04 || public key)[:4].
It states that, as of that time, this is the largest consistent tree the cosigner has seen
for the log's origin. Threshold's relay cosigns this way (``cloud.tlog_witness``), and so
does any standard witness a gateway lists under ``[witnesses]``.

Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from store.note import (
    MalformedNote,
    NoteSignature,
    SignatureType,
    Verifier,
    check_key_name,
    key_id,
    parse_vkey,
)

HEADER = "cosignature/v1\n"
#: "It MUST NOT exceed 2^63 - 1."
MAX_TIMESTAMP = 2**63 - 1
_U64 = struct.Struct(">Q")


def message(timestamp: int, checkpoint_text: str) -> bytes:
    """The bytes an Ed25519 cosigner signs for ``checkpoint_text`` at ``timestamp``."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise MalformedNote("a cosignature's timestamp is from 0 to 2^63-1")
    return f"{HEADER}time {timestamp}\n{checkpoint_text}".encode()


def cosign(key: SigningKey, name: str, checkpoint_text: str, timestamp: int) -> NoteSignature:
    """The cosignature line of ``key`` (named ``name``) over a checkpoint, at ``timestamp``."""
    ident = key_id(check_key_name(name), SignatureType.COSIGNATURE_ED25519, bytes(key.verify_key))
    signed = key.sign(message(timestamp, checkpoint_text)).signature
    return NoteSignature(name, ident + _U64.pack(timestamp) + bytes(signed))


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: who, and the time it states."""

    name: str
    timestamp: int


def timestamp_of(signature: bytes) -> int:
    """The timestamp of a ``timestamped_signature`` (the bytes after the key ID)."""
    if len(signature) != 8 + 64:
        raise MalformedNote("an Ed25519 cosignature is an 8-byte time and a 64-byte signature")
    (timestamp,) = _U64.unpack_from(signature)
    if timestamp > MAX_TIMESTAMP:
        raise MalformedNote("a cosignature's timestamp is from 0 to 2^63-1")
    return int(timestamp)


def _check(public_key: bytes) -> Callable[[bytes, bytes], bool]:
    def check(text: bytes, signature: bytes) -> bool:
        try:
            timestamp = timestamp_of(signature)
            VerifyKey(public_key).verify(
                HEADER.encode() + f"time {timestamp}\n".encode() + text, signature[8:]
            )
        except (MalformedNote, BadSignatureError, ValueError):
            return False
        return True

    return check


def verifier(name: str, public_key: bytes) -> Verifier:
    """A trusted cosigner: verifies type 0x04 signatures from ``public_key`` named ``name``."""
    if len(public_key) != 32:
        raise MalformedNote("an Ed25519 cosigner key is 32 bytes")
    check_key_name(name)
    return Verifier(name, SignatureType.COSIGNATURE_ED25519, public_key, _check(public_key))


def _make(name: str, kind: SignatureType, public_key: bytes) -> Verifier:
    if kind is not SignatureType.COSIGNATURE_ED25519:
        raise MalformedNote("a cosigner vkey has signature type 0x04")
    return verifier(name, public_key)


def parse_cosigner_vkey(text: str) -> Verifier:
    """A cosigner's vkey (``<name>+<hex id>+base64(0x04 || key)``); refuses other types."""
    found = parse_vkey(text, _make)
    if found.signature_type is not SignatureType.COSIGNATURE_ED25519:
        raise MalformedNote("a cosigner vkey has signature type 0x04")
    return found


def check(verifier_: Verifier, checkpoint_text: str, signature: NoteSignature) -> Cosignature:
    """The verified cosignature, or :class:`MalformedNote` when it is not ``verifier_``'s."""
    if signature.name != verifier_.name or signature.key_id != verifier_.key_id:
        raise MalformedNote(f"the cosignature is not from {verifier_.name}")
    if not verifier_.check(checkpoint_text.encode(), signature.signature):
        raise MalformedNote(f"the cosignature of {verifier_.name} does not verify")
    return Cosignature(signature.name, timestamp_of(signature.signature))
