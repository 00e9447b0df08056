"""Sealing entries to the owner (DESIGN §8): what ``Store.open(seal=...)`` is given.

The owner's Ed25519 public key (set at ``init``) converts to an X25519 key; each entry's
canonical bytes go into a libsodium sealed box for it (an ephemeral key per box, so sealing
is randomised and happens once, at append). Only the owner's secret key opens them. The tree
hashes the sealed bytes, so the cloud can check completeness and order without reading.
"""

from __future__ import annotations

from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519, crypto_sign_ed25519_sk_to_curve25519
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey

from store.errors import InvalidEntry


class OwnerSealer:
    """An ``EntrySealer``: seals canonical entry bytes to the owner's key."""

    def __init__(self, owner_ed25519_public_key: bytes) -> None:
        if len(owner_ed25519_public_key) != 32:
            raise InvalidEntry("the owner's Ed25519 public key is 32 bytes")
        try:
            x25519 = crypto_sign_ed25519_pk_to_curve25519(owner_ed25519_public_key)
        except CryptoError:
            raise InvalidEntry("the owner's public key is not a valid Ed25519 point") from None
        self._box = SealedBox(PublicKey(x25519))

    def __call__(self, canonical: bytes) -> bytes:
        return bytes(self._box.encrypt(canonical))


def open_sealed(owner_signing_key: SigningKey, sealed: bytes) -> bytes:
    """The owner's side: the canonical bytes inside a sealed entry."""
    secret = crypto_sign_ed25519_sk_to_curve25519(
        bytes(owner_signing_key) + bytes(owner_signing_key.verify_key)
    )
    try:
        return bytes(SealedBox(PrivateKey(secret)).decrypt(sealed))
    except CryptoError:
        raise InvalidEntry("the sealed entry does not open with this owner key") from None
