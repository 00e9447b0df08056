"""Ed25519 key material for tickets: secret keys, public keys, key ids and the trust anchors.

Secret keys are handled in libsodium's 64-byte form (seed || public key), the form
:func:`gateway.trust.paseto.sign` takes. A key id (``kid``) is the PASERK ``k4.pid`` of the public
key (paseto-standard/paserk, ``operations/ID.md``): ``"k4.pid." + base64url(BLAKE2b-264(
"k4.pid." + "k4.public." + base64url(public_key)))``. A kid only names a key; trust comes
from finding that key among the anchors or in an owner-signed certificate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from nacl.signing import SigningKey

from gateway.trust.claims import malformed
from gateway.trust.paseto import PasetoError, b64decode, b64encode

PUBLIC_KEY_LEN = 32
SECRET_KEY_LEN = 64


def generate_secret_key() -> bytes:
    """A fresh 64-byte Ed25519 secret key (seed || public key)."""
    signing_key = SigningKey.generate()
    return bytes(signing_key) + bytes(signing_key.verify_key)


def secret_key_from_seed(seed: bytes) -> bytes:
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed is 32 bytes")
    return seed + bytes(SigningKey(seed).verify_key)


def public_key_of(secret_key: bytes) -> bytes:
    if len(secret_key) != SECRET_KEY_LEN:
        raise ValueError("an Ed25519 secret key is 64 bytes")
    return secret_key[32:]


def key_id(public_key: bytes) -> str:
    """The PASERK ``k4.pid`` of an Ed25519 public key."""
    paserk = "k4.public." + b64encode(public_key)
    digest = hashlib.blake2b(("k4.pid." + paserk).encode("ascii"), digest_size=33).digest()
    return "k4.pid." + b64encode(digest)


def decode_public_key(text: str) -> bytes:
    """A base64url public key from a claim; malformed_claims unless exactly 32 bytes."""
    try:
        key = b64decode(text)
    except PasetoError:
        malformed("public key is not canonical base64url")
    if len(key) != PUBLIC_KEY_LEN:
        malformed("public key must be 32 bytes")
    return key


@dataclass(frozen=True)
class TrustAnchors:
    """The owner root keys this gateway trusts (normally one; two while rotating)."""

    owner_keys: tuple[bytes, ...]
    by_kid: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.owner_keys or any(len(k) != PUBLIC_KEY_LEN for k in self.owner_keys):
            raise ValueError("trust anchors need at least one 32-byte owner key")
        object.__setattr__(self, "by_kid", {key_id(k): k for k in self.owner_keys})

    @classmethod
    def of(cls, *owner_keys: bytes) -> TrustAnchors:
        return cls(tuple(owner_keys))
