"""Sealing audit entries to the owner: padding to size classes, then a libsodium sealed box.

docs/cloud.md, "What leaves the home". Every audit entry leaves the home sealed to the owner.
The owner holds one Ed25519 root key; its X25519 twin
(``crypto_sign_ed25519_pk_to_curve25519``) is the recipient of a ``crypto_box_seal`` (an
ephemeral X25519 key, XSalsa20-Poly1305, 48 bytes of overhead). Only the holder of the
owner's Ed25519 secret key can open it.

Padding happens BEFORE sealing, so the ciphertext length tells the cloud only the size class
of an entry, not whether it was a delivery or a cleaner. Padded plaintext::

    u32 big-endian length of the entry || entry bytes || zero bytes up to the class size

Size classes are powers of two from 512 bytes; an entry of canonical size n (plus the 4-byte
length) lands in the smallest class that holds it. A typical entry (a few hundred bytes) is
512, so a delivery, a cleaner's visit and a lock event all seal to 560 bytes.

The owner's mail to the gateway (revocation lists, approvals) is sealed the same way to the
gateway's key, so the relay passing it on cannot read who was revoked or which visit was
approved.

The sealed box is libsodium's ``crypto_box_seal`` layout (its documentation, "Sealed
boxes"), built from its parts so that the costly half can be done ahead of time: a fresh
X25519 key pair ``(epk, esk)``, the box key ``k = crypto_box_beforenm(recipient, esk)`` and
the nonce ``BLAKE2b-192(epk || recipient)`` depend only on the recipient, not on the entry
(:class:`SealKey`, about 60 µs of X25519); sealing an entry is then ``epk ||
crypto_box_afternm(pad(entry), nonce, k)`` (about 2 µs). ``crypto_box_seal_open`` opens it
unchanged (a test checks). Each :class:`SealKey` seals exactly one entry, so every entry
still has its own ephemeral key; :mod:`gateway.app.seal_keys` makes them in a background
thread.

Pure: no I/O. The store calls its ``seal`` hook once per entry at append time, and the leaf
hash covers the sealed bytes.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from nacl.bindings import (
    crypto_box_afternm,
    crypto_box_beforenm,
    crypto_box_keypair,
    crypto_box_seal_open,
    crypto_scalarmult_base,
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
)
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey

from gateway.errors import GatewayError

SEAL_OVERHEAD = 48
SMALLEST_CLASS = 512
#: The kind of the paced upload's padding entries (gateway.sync.pacing, docs/privacy.md):
#: sealed like every entry, so only the owner (and the gateway, locally) can tell them from
#: real ones; the owner's tools count them and leave them out of the history.
PADDING_KIND = "sync.padding"
LARGEST_CLASS = 128 * 1024
_LENGTH = struct.Struct(">I")


class SealError(GatewayError):
    """An entry cannot be sealed, or sealed bytes cannot be opened with this key."""

    code = "seal_failed"


def size_class(length: int) -> int:
    """The padded size for an entry of ``length`` bytes (the 4-byte prefix included)."""
    need = length + _LENGTH.size
    if need > LARGEST_CLASS:
        raise SealError(f"an entry of {length} bytes exceeds the largest size class")
    size = SMALLEST_CLASS
    while size < need:
        size *= 2
    return size


def pad(entry: bytes) -> bytes:
    size = size_class(len(entry))
    return _LENGTH.pack(len(entry)) + entry + bytes(size - _LENGTH.size - len(entry))


def unpad(padded: bytes) -> bytes:
    if len(padded) < SMALLEST_CLASS or len(padded) & (len(padded) - 1):
        raise SealError("padded entry is not one of the size classes")
    (length,) = _LENGTH.unpack_from(padded)
    end = _LENGTH.size + length
    if end > len(padded) or any(padded[end:]):
        raise SealError("padded entry has a bad length or non-zero padding")
    return padded[_LENGTH.size : end]


@dataclass(frozen=True, slots=True)
class SealKey:
    """The entry-independent half of one sealed box: the ephemeral public key, the box key
    it shares with the recipient, and the box's nonce. Seals one entry, then is dropped."""

    public: bytes
    box_key: bytes = field(repr=False)
    nonce: bytes
    recipient: bytes


class Sealer:
    """Seals to one Ed25519 key holder: the owner for audit entries (the store's ``seal``
    hook), the gateway for the owner's mail the relay passes on."""

    def __init__(self, recipient_public_key: bytes) -> None:
        if len(recipient_public_key) != 32:
            raise SealError("the recipient's public key is 32 bytes")
        try:
            self._recipient = crypto_sign_ed25519_pk_to_curve25519(recipient_public_key)
        except (CryptoError, ValueError, RuntimeError):
            raise SealError("the recipient's public key is not a valid Ed25519 point") from None

    def __call__(self, entry: bytes) -> bytes:
        return self.seal(entry)

    def fresh_key(self) -> SealKey:
        """A new ephemeral key's share of a box to the recipient (the X25519 work)."""
        public, secret = crypto_box_keypair()
        box_key = crypto_box_beforenm(self._recipient, secret)
        nonce = hashlib.blake2b(public + self._recipient, digest_size=24).digest()
        return SealKey(public, box_key, nonce, self._recipient)

    def seal(self, entry: bytes, key: SealKey | None = None) -> bytes:
        """``entry`` padded and sealed, with ``key`` (from :meth:`fresh_key`, never used
        before: the caller hands each key out once) or a fresh one."""
        key = key or self.fresh_key()
        if key.recipient != self._recipient:
            raise SealError("a seal key made for another recipient")
        return key.public + crypto_box_afternm(pad(entry), key.nonce, key.box_key)


class Unsealer:
    """Opens what a :class:`Sealer` sealed, with the recipient's Ed25519 secret key
    (a 32-byte seed or the 64-byte libsodium form)."""

    def __init__(self, secret_key: bytes) -> None:
        if len(secret_key) not in (32, 64):
            raise SealError("an Ed25519 secret key is a 32-byte seed or 64 bytes")
        signing = SigningKey(secret_key[:32])
        full = bytes(signing) + bytes(signing.verify_key)
        if len(secret_key) == 64 and secret_key != full:
            raise SealError("the 64-byte secret key does not match its seed")
        self._secret = crypto_sign_ed25519_sk_to_curve25519(full)
        self._public = crypto_scalarmult_base(self._secret)
        self.public_key = bytes(signing.verify_key)

    def open(self, sealed: bytes) -> bytes:
        if len(sealed) <= SEAL_OVERHEAD:
            raise SealError("sealed entry is too short")
        try:
            padded = crypto_box_seal_open(sealed, self._public, self._secret)
        except CryptoError:
            raise SealError("sealed bytes do not open with this key") from None
        return unpad(bytes(padded))
