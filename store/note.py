"""C2SP signed notes (https://c2sp.org/signed-note, v1.0.0): text signed by one or more keys.

A note is a text ending in a newline, a blank line, and one or more signature lines
``— <key name> base64(key ID || signature)``. A verifier trusts a set of keys, each named by
(key name, key ID); it ignores signatures from any other key, MUST verify every signature
from a known key (one that fails rejects the whole note) and rejects a note no known key
signed. This module implements Ed25519 note signatures (type 0x01, "Ed25519 signatures")
and the verifier-key (vkey) text form ("Verifier keys"); the timestamped cosignature type
0x04 lives in ``store.cosignature`` and plugs in through :class:`Verifier`.

Pure: no I/O. Every parser raises :class:`MalformedNote` on bad input.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from store.errors import InvalidEntry

#: U+2014 EM DASH and a space open every signature line.
DASH = "\u2014 "
#: "Verifiers MUST accept at least up to 16 signatures"; this bounds the work per note.
MAX_SIGNATURES = 64
MAX_NOTE_BYTES = 64 * 1024
# "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus."
_SPACE = re.compile(r"[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000+]")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class SignatureType(enum.IntEnum):
    """The signature type bytes of signed-note "Signature types" that Threshold uses."""

    ED25519 = 0x01
    COSIGNATURE_ED25519 = 0x04


class MalformedNote(InvalidEntry):
    """The bytes are not a signed note, a vkey, or are not signed by a trusted key."""

    code = "malformed_note"


def check_key_name(name: str) -> str:
    if not name or _SPACE.search(name) is not None or _CONTROL.search(name) is not None:
        raise MalformedNote(f"key name {name!r} is empty or has a space, plus or control char")
    return name


def key_id(name: str, signature_type: SignatureType, public_key: bytes) -> bytes:
    """SHA-256(key name || 0x0A || signature type || public key)[:4] ("Signatures")."""
    material = name.encode() + b"\n" + bytes([signature_type]) + public_key
    return hashlib.sha256(material).digest()[:4]


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key name and the decoded ``key ID || signature`` bytes."""

    name: str
    blob: bytes

    @property
    def key_id(self) -> bytes:
        return self.blob[:4]

    @property
    def signature(self) -> bytes:
        return self.blob[4:]

    def line(self) -> str:
        return f"{DASH}{self.name} {base64.b64encode(self.blob).decode('ascii')}\n"


@dataclass(frozen=True)
class Note:
    """A parsed note: ``text`` includes its final newline, not the separating blank line."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        lines = "".join(sig.line() for sig in self.signatures)
        return (self.text + "\n" + lines).encode("utf-8")


@dataclass(frozen=True)
class Verifier:
    """A trusted key: name, type, public key, and how to check one signature of its type.

    ``check(text, signature)`` returns True when the signature (without the key ID) is valid
    over the note text.
    """

    name: str
    signature_type: SignatureType
    public_key: bytes
    check: Callable[[bytes, bytes], bool]

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.signature_type, self.public_key)

    def vkey(self) -> str:
        """``<name>+hex(key ID)+base64(type || public key)`` ("Verifier keys")."""
        material = bytes([self.signature_type]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(material).decode('ascii')}"


def _ed25519_check(public_key: bytes) -> Callable[[bytes, bytes], bool]:
    def check(text: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            VerifyKey(public_key).verify(text, signature)
        except (BadSignatureError, ValueError):
            return False
        return True

    return check


def ed25519_verifier(name: str, public_key: bytes) -> Verifier:
    if len(public_key) != 32:
        raise MalformedNote("an Ed25519 public key is 32 bytes")
    check_key_name(name)
    return Verifier(name, SignatureType.ED25519, public_key, _ed25519_check(public_key))


def sign_ed25519(key: SigningKey, name: str, text: str) -> NoteSignature:
    """An Ed25519 note signature (type 0x01) of ``text`` by ``key`` under ``name``."""
    ident = key_id(check_key_name(name), SignatureType.ED25519, bytes(key.verify_key))
    return NoteSignature(name, ident + bytes(key.sign(text.encode("utf-8")).signature))


def parse_vkey(
    text: str, make: Callable[[str, SignatureType, bytes], Verifier] | None = None
) -> Verifier:
    """A vkey of type 0x01 (or 0x04 through ``make``, see ``store.cosignature``)."""
    parts = text.strip().split("+", 2)  # the base64 key may itself hold a plus
    if len(parts) != 3:
        raise MalformedNote("a vkey is <name>+<hex key ID>+<base64 key>")
    name, hex_id, material_b64 = parts
    check_key_name(name)
    try:
        ident = bytes.fromhex(hex_id)
        material = base64.b64decode(material_b64, validate=True)
    except (ValueError, binascii.Error):
        raise MalformedNote("a vkey's key ID is not hex or its key not base64") from None
    if len(ident) != 4 or len(hex_id) != 8 or not material:
        raise MalformedNote("a vkey's key ID is 4 bytes and its key is not empty")
    try:
        kind = SignatureType(material[0])
    except ValueError:
        raise MalformedNote(f"vkey signature type 0x{material[0]:02x} is not supported") from None
    if kind is SignatureType.ED25519:
        verifier = ed25519_verifier(name, material[1:])
    elif make is not None:
        verifier = make(name, kind, material[1:])
    else:
        raise MalformedNote(f"vkey signature type 0x{material[0]:02x} is not expected here")
    if verifier.key_id != ident:
        raise MalformedNote("the vkey's key ID does not match its name and key")
    return verifier


def parse(data: bytes | str) -> Note:
    """Split a signed note into text and signature lines; nothing is verified yet."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_NOTE_BYTES:
        raise MalformedNote(f"a note is at most {MAX_NOTE_BYTES} bytes")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedNote("a note is UTF-8") from None
    if _CONTROL.search(decoded) is not None:
        raise MalformedNote("a note has no control characters other than newline")
    split = decoded.rfind("\n\n")
    if split < 0 or not decoded.endswith("\n"):
        raise MalformedNote("a note is text, a blank line and signature lines, newline-ended")
    text = decoded[: split + 1]
    lines = decoded[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"a note carries at most {MAX_SIGNATURES} signatures")
    signatures = tuple(_signature_line(line) for line in lines)
    return Note(text, signatures)


def _signature_line(line: str) -> NoteSignature:
    if not line.startswith(DASH):
        raise MalformedNote("a signature line starts with an em dash and a space")
    name, space, blob_b64 = line[len(DASH) :].partition(" ")
    if not space:
        raise MalformedNote("a signature line is '— <name> <base64>'")
    check_key_name(name)
    try:
        blob = base64.b64decode(blob_b64, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedNote("a signature is not base64") from None
    if len(blob) < 5:
        raise MalformedNote("a signature is a 4-byte key ID and at least one byte")
    return NoteSignature(name, blob)


def verified(note: Note, verifiers: Iterable[Verifier]) -> tuple[NoteSignature, ...]:
    """The signatures of ``note`` that known keys made, all checked ("Signatures").

    Raises :class:`MalformedNote` when a known key's signature fails or no known key signed.
    """
    known = {(v.name, v.key_id): v for v in verifiers}
    good: list[NoteSignature] = []
    text = note.text.encode("utf-8")
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.check(text, sig.signature):
            raise MalformedNote(f"the signature of known key {sig.name} does not verify")
        good.append(sig)
    if not good:
        raise MalformedNote("no signature from a trusted key")
    return tuple(good)


def open_note(data: bytes | str, verifiers: Sequence[Verifier]) -> Note:
    """Parse and verify: the note, when at least one trusted key signed it."""
    note = parse(data)
    verified(note, verifiers)
    return note
