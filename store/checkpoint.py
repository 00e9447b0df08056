"""Signed checkpoints: the gateway's Ed25519 signature over (origin, tree size, root).

Since issue 12 a checkpoint is a C2SP ``tlog-checkpoint`` (https://c2sp.org/tlog-checkpoint,
v1.0.0) signed as a C2SP ``signed-note`` (``store.note``), so any standard witness can
cosign it::

    threshold.example/gw/<gateway id>
    <tree size, decimal, no leading zeroes>
    <root hash, standard base64>

    — threshold.example/gw/<gateway id> base64(key ID || Ed25519 signature)

The origin line, which is also the key name, is ``threshold.example/gw/`` followed by the
gateway id (:func:`log_origin`): stable for the gateway's life, a schema-less URL without
spaces or plus as both specs ask; ``.example`` is reserved (RFC 2606), so it never collides
with a real log. The key ID is SHA-256(origin || 0x0A || 0x01 || public key)[:4]. There are
no extension lines. **Time is not in the signed text**: ``time_ms`` is the gateway's clock
when it signed, kept beside the note for display only; the signed statement of time is each
witness's cosignature timestamp (``store.cosignature``). docs/audit-log.md explains why.

Checkpoints signed before the change are ``threshold-checkpoint/v1`` (:attr:`Format.LEGACY`):
the gateway id as origin and the time inside the signed text::

    threshold-checkpoint/v1
    <gateway id>
    <tree size>
    <root hash, standard base64>
    <time, Unix milliseconds>

They still verify; the store never signs that format again. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass, field
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from store import note
from store.errors import InvalidEntry

FORMAT_LINE = "threshold-checkpoint/v1"
ORIGIN_PREFIX = "threshold.example/gw/"
_ORIGIN = re.compile(r"[\x21-\x7e]{1,128}")
_GATEWAY_ID = re.compile(r"[\x21-\x2a\x2c-\x7e]{1,100}")  # printable ASCII, no space, no plus
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


class Format(enum.Enum):
    LEGACY = "threshold-checkpoint/v1"
    NOTE = "tlog-checkpoint"


def log_origin(gateway_id: str) -> str:
    """The origin line and key name of a gateway's log."""
    if _GATEWAY_ID.fullmatch(gateway_id) is None:
        raise InvalidEntry(f"gateway id {gateway_id!r} is not printable ASCII without + or space")
    return ORIGIN_PREFIX + gateway_id


@dataclass(frozen=True)
class Body:
    """A ``tlog-checkpoint`` note text, parsed ("Note text")."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def parse_body(text: str) -> Body:
    """Origin, size, root and extension lines of a checkpoint's note text."""
    if not text.endswith("\n"):
        raise note.MalformedNote("a checkpoint's note text ends in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise note.MalformedNote("a checkpoint is at least three non-empty lines")
    origin, size, root_b64, *extensions = lines
    if _SIZE.fullmatch(size) is None or int(size) > 2**63 - 1:
        raise note.MalformedNote("a checkpoint's tree size is decimal without leading zeroes")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except (binascii.Error, ValueError):
        raise note.MalformedNote("a checkpoint's root hash is not base64") from None
    if len(root) != 32 or base64.b64encode(root).decode("ascii") != root_b64:
        raise note.MalformedNote("a checkpoint's root hash is 32 bytes in standard base64")
    return Body(origin, int(size), root, tuple(extensions))


@dataclass(frozen=True)
class Checkpoint:
    """The state of the log at one moment: ``tree_size`` entries hash to ``root_hash``.

    ``time_ms`` is signed only in the legacy format; in a note it is the gateway's own clock,
    for display.
    """

    origin: str
    tree_size: int
    root_hash: bytes
    time_ms: int
    format: Format = Format.NOTE

    @property
    def gateway_id(self) -> str | None:
        """The gateway this checkpoint names (None: an origin that is not a gateway's)."""
        if self.format is Format.LEGACY:
            return self.origin
        if not self.origin.startswith(ORIGIN_PREFIX):
            return None
        return self.origin[len(ORIGIN_PREFIX) :]

    def _check(self) -> None:
        if _ORIGIN.fullmatch(self.origin) is None:
            raise InvalidEntry(f"checkpoint origin {self.origin!r} is not printable ASCII")
        if self.format is Format.NOTE and "+" in self.origin:
            raise InvalidEntry("a note checkpoint's origin is a key name: no plus")
        if self.tree_size < 0 or self.time_ms < 0 or len(self.root_hash) != 32:
            raise InvalidEntry("checkpoint needs size >= 0, time >= 0 and a 32-byte root")

    def note_text(self) -> str:
        """The ``tlog-checkpoint`` note text: origin, size, root, each newline-terminated."""
        self._check()
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.tree_size}\n{root}\n"

    def message(self) -> bytes:
        """The exact bytes the gateway signs."""
        if self.format is Format.NOTE:
            return self.note_text().encode()
        self._check()
        root = base64.b64encode(self.root_hash).decode("ascii")
        return (
            f"{FORMAT_LINE}\n{self.origin}\n{self.tree_size}\n{root}\n{self.time_ms}\n"
        ).encode()


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint, the gateway's 64-byte Ed25519 signature and, for a note, its key ID."""

    checkpoint: Checkpoint
    signature: bytes
    key_id: bytes = field(default=b"")

    def verify(self, public_key: bytes) -> bool:
        """True when ``signature`` is the holder of ``public_key`` signing this checkpoint
        (for a note: under the key name and key ID the signed-note spec derives)."""
        if len(public_key) != 32 or len(self.signature) != 64:
            return False
        cp = self.checkpoint
        try:
            if cp.format is Format.NOTE and self.key_id != note.key_id(
                cp.origin, note.SignatureType.ED25519, public_key
            ):
                return False
            VerifyKey(public_key).verify(cp.message(), self.signature)
        except (BadSignatureError, InvalidEntry, ValueError):
            return False
        return True

    def note_signature(self) -> note.NoteSignature:
        if self.checkpoint.format is not Format.NOTE:
            raise InvalidEntry("a legacy checkpoint is not a signed note")
        return note.NoteSignature(self.checkpoint.origin, self.key_id + self.signature)

    def note(self, *cosignatures: note.NoteSignature) -> str:
        """The signed note: the gateway's signature line, then any cosignature lines."""
        text = self.checkpoint.note_text()
        return note.Note(text, (self.note_signature(), *cosignatures)).encode().decode("utf-8")

    @classmethod
    def from_note(cls, data: str | bytes, time_ms: int = 0) -> SignedCheckpoint:
        """The checkpoint in a signed note and the signature whose key name is its origin.

        Nothing is verified here (:meth:`verify` does that); cosignature lines are ignored.
        Extension lines are refused: Threshold's gateways never write them.
        """
        parsed = note.parse(data)
        body = parse_body(parsed.text)
        if body.extensions:
            raise note.MalformedNote("a gateway checkpoint has no extension lines")
        for sig in parsed.signatures:
            if sig.name == body.origin and len(sig.blob) == 4 + 64:
                cp = Checkpoint(body.origin, body.tree_size, body.root_hash, time_ms)
                cp.note_text()
                return cls(cp, sig.signature, sig.key_id)
        raise note.MalformedNote("the note has no Ed25519 signature under its origin")

    def to_json(self) -> dict[str, Any]:
        """The JSON form (docs/api.md, "Checkpoints"): for a note, ``note`` is the signed
        note and the other members repeat it for reading (``time_ms`` is not signed)."""
        cp = self.checkpoint
        out: dict[str, Any] = {
            "format": cp.format.value,
            "origin": cp.origin,
            "tree_size": cp.tree_size,
            "root_hash": base64.b64encode(cp.root_hash).decode("ascii"),
            "time_ms": cp.time_ms,
        }
        if cp.format is Format.NOTE:
            out["note"] = self.note()
        else:
            out["signature"] = base64.b64encode(self.signature).decode("ascii")
        return out


class CheckpointSigner:
    """The gateway key, as far as the audit log needs it: it signs checkpoints."""

    def __init__(self, signing_key: SigningKey, origin: str) -> None:
        if _ORIGIN.fullmatch(origin) is None:
            raise InvalidEntry(f"gateway id {origin!r} is not printable ASCII without spaces")
        self._key = signing_key
        #: The gateway id (the database's identity); the log's origin line is ``log_origin``.
        self.origin = origin
        self.log_origin = log_origin(origin)

    @classmethod
    def from_secret(cls, secret: bytes, origin: str) -> CheckpointSigner:
        """From a 32-byte seed or a 64-byte libsodium secret key (seed followed by public)."""
        if len(secret) == 64:
            key = SigningKey(secret[:32])
            if bytes(key.verify_key) != secret[32:]:
                raise InvalidEntry("the 64-byte secret key's public half does not match its seed")
            return cls(key, origin)
        if len(secret) == 32:
            return cls(SigningKey(secret), origin)
        raise InvalidEntry(f"a gateway secret key is 32 or 64 bytes, not {len(secret)}")

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    def verifier(self) -> note.Verifier:
        """The log's note verifier key (``vkey()`` gives the text form a witness is set with)."""
        return note.ed25519_verifier(self.log_origin, self.public_key)

    def sign(self, tree_size: int, root_hash: bytes, time_ms: int) -> SignedCheckpoint:
        checkpoint = Checkpoint(self.log_origin, tree_size, root_hash, time_ms)
        line = note.sign_ed25519(self._key, self.log_origin, checkpoint.note_text())
        return SignedCheckpoint(checkpoint, line.signature, line.key_id)

    def sign_legacy(self, tree_size: int, root_hash: bytes, time_ms: int) -> SignedCheckpoint:
        """A ``threshold-checkpoint/v1`` signature: only for tests of old databases."""
        checkpoint = Checkpoint(self.origin, tree_size, root_hash, time_ms, Format.LEGACY)
        return SignedCheckpoint(checkpoint, bytes(self._key.sign(checkpoint.message()).signature))
