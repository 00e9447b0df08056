"""Signed checkpoints: the gateway's Ed25519 signature over (origin, tree size, root, time).

Signed message (version 1), UTF-8, each line ending in a newline, in the spirit of the C2SP
tlog-checkpoint format::

    threshold-checkpoint/v1
    <origin: the gateway id, printable ASCII without spaces>
    <tree size, decimal>
    <root hash, standard base64 with padding>
    <time, Unix milliseconds, decimal>

The first line separates these signatures from anything else the gateway key signs (receipts,
LAN identity). Verifying needs only the gateway's 32-byte public key. Pure: no I/O.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from store.errors import InvalidEntry

FORMAT_LINE = "threshold-checkpoint/v1"
_ORIGIN = re.compile(r"[\x21-\x7e]{1,128}")


@dataclass(frozen=True)
class Checkpoint:
    """The state of the log at one moment: ``tree_size`` entries hash to ``root_hash``."""

    origin: str
    tree_size: int
    root_hash: bytes
    time_ms: int

    def message(self) -> bytes:
        """The exact bytes the gateway signs."""
        if _ORIGIN.fullmatch(self.origin) is None:
            raise InvalidEntry(f"checkpoint origin {self.origin!r} is not printable ASCII")
        if self.tree_size < 0 or self.time_ms < 0 or len(self.root_hash) != 32:
            raise InvalidEntry("checkpoint needs size >= 0, time >= 0 and a 32-byte root")
        root = base64.b64encode(self.root_hash).decode("ascii")
        return (
            f"{FORMAT_LINE}\n{self.origin}\n{self.tree_size}\n{root}\n{self.time_ms}\n"
        ).encode()


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: bytes

    def verify(self, public_key: bytes) -> bool:
        """True when ``signature`` is the holder of ``public_key`` signing this checkpoint."""
        if len(public_key) != 32 or len(self.signature) != 64:
            return False
        try:
            VerifyKey(public_key).verify(self.checkpoint.message(), self.signature)
        except (BadSignatureError, InvalidEntry, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "origin": cp.origin,
            "tree_size": cp.tree_size,
            "root_hash": base64.b64encode(cp.root_hash).decode("ascii"),
            "time_ms": cp.time_ms,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }


class CheckpointSigner:
    """The gateway key, as far as the audit log needs it: it signs checkpoints."""

    def __init__(self, signing_key: SigningKey, origin: str) -> None:
        if _ORIGIN.fullmatch(origin) is None:
            raise InvalidEntry(f"gateway id {origin!r} is not printable ASCII without spaces")
        self._key = signing_key
        self.origin = origin

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

    def sign(self, tree_size: int, root_hash: bytes, time_ms: int) -> SignedCheckpoint:
        checkpoint = Checkpoint(self.origin, tree_size, root_hash, time_ms)
        signature = self._key.sign(checkpoint.message()).signature
        return SignedCheckpoint(checkpoint, bytes(signature))
