"""Proof of possession: the holder's signature over a gateway challenge (docs/tickets.md §5).

A ticket alone opens nothing. The gateway hands out a single-use 32-byte nonce valid for a
few seconds (a :class:`ChallengeRecord`); the phone signs :func:`proof_message` with the
Ed25519 key named in the ticket's ``cnf`` and sends the raw 64-byte signature. The message
is PASETO's pre-authentication encoding (PAE) of five pieces::

    PAE("threshold-proof-v1", gateway_id, nonce, ticket_id, action)

PAE length-prefixes each piece, so no two different tuples share an encoding, and the context
string keeps these signatures from being valid anywhere else. docs/tickets.md gives the exact
bytes and a worked example.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey

from gateway.trust.claims import IDENTIFIER
from gateway.trust.paseto import pae

PROOF_CONTEXT = b"threshold-proof-v1"
NONCE_LEN = 32
SIGNATURE_LEN = 64
CHALLENGE_TTL = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class ChallengeRecord:
    """A challenge the gateway issued: its nonce, for which gateway, and until when."""

    nonce: bytes
    gateway_id: str
    expires_at: datetime


def new_challenge(
    gateway_id: str, now: datetime, ttl: timedelta = CHALLENGE_TTL
) -> ChallengeRecord:
    return ChallengeRecord(secrets.token_bytes(NONCE_LEN), gateway_id, now + ttl)


def proof_message(gateway_id: str, nonce: bytes, ticket_id: str, action: str) -> bytes:
    """The exact bytes the holder signs."""
    if len(nonce) != NONCE_LEN:
        raise ValueError("a challenge nonce is 32 bytes")
    for name, value in (("gateway_id", gateway_id), ("ticket_id", ticket_id), ("action", action)):
        if IDENTIFIER.fullmatch(value) is None:
            raise ValueError(f"{name} is not a valid identifier")
    return pae(
        PROOF_CONTEXT,
        gateway_id.encode("ascii"),
        nonce,
        ticket_id.encode("ascii"),
        action.encode("ascii"),
    )


def sign_proof(
    holder_secret_key: bytes, gateway_id: str, nonce: bytes, ticket_id: str, action: str
) -> bytes:
    """What the phone does: the 64-byte signature over :func:`proof_message`."""
    signing_key = SigningKey(holder_secret_key[:32])
    message = proof_message(gateway_id, nonce, ticket_id, action)
    return signing_key.sign(message).signature


def proof_valid(
    holder_public_key: bytes,
    signature: bytes,
    gateway_id: str,
    nonce: bytes,
    ticket_id: str,
    action: str,
) -> bool:
    if len(signature) != SIGNATURE_LEN or len(holder_public_key) != 32:
        return False
    try:
        message = proof_message(gateway_id, nonce, ticket_id, action)
        crypto_sign_open(signature + message, holder_public_key)
    except (CryptoError, ValueError, TypeError):
        return False
    return True
