"""PASETO v4.public (Ed25519) on PyNaCl: the envelope every Threshold token travels in.

Implements the v4.public protocol of the PASETO specification (``docs/Protocol/Version4.md``
of paseto-standard/paseto-spec, sections "Sign" and "Verify") and its pre-authentication
encoding (``docs/01-Protocol-Versions/Common.md``, "PAE").

Theory of operation. A token is ``v4.public.`` + base64url(message || signature), then
optionally ``.`` + base64url(footer). The signature covers PAE(header, message, footer,
implicit assertion), so nothing in the token is unauthenticated except by choice of the
verifier. This module is deliberately strict where lenient parsing has hurt others:

* the header is the exact, case-sensitive literal ``v4.public.``; nothing else is a v4.public
  token (``v4.local`` and every other version or purpose are refused);
* the whole string must match (``re.fullmatch``; ``$`` would accept a trailing newline);
* base64url must be canonical and unpadded: a decoder that ignores non-zero trailing bits
  lets two different strings carry one signature;
* an expected footer is compared in constant time.

Whatever the input, the only exception that leaves :func:`verify` or :func:`sign` is
:class:`PasetoError`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from functools import lru_cache

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from gateway.errors import GatewayError

__all__ = [
    "HEADER",
    "PasetoError",
    "SignatureMismatch",
    "b64decode",
    "b64encode",
    "pae",
    "sign",
    "verify",
]

HEADER = "v4.public."
_HEADER_BYTES = HEADER.encode("ascii")
_SIGNATURE_LEN = 64
_TOKEN = re.compile(r"v4\.public\.([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_-]+))?")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class PasetoError(GatewayError):
    """The token is not a well-formed, authentic v4.public token for this key."""

    code = "bad_token"


class SignatureMismatch(PasetoError):
    """A well-formed token whose signature does not verify under the key given."""


def pae(*pieces: bytes) -> bytes:
    """Pre-authentication encoding: LE64(count), then LE64(len) || piece for each piece."""
    out = bytearray((len(pieces) & 0x7FFF_FFFF_FFFF_FFFF).to_bytes(8, "little"))
    for piece in pieces:
        out += (len(piece) & 0x7FFF_FFFF_FFFF_FFFF).to_bytes(8, "little")
        out += piece
    return bytes(out)


def b64encode(data: bytes) -> str:
    """Unpadded base64url, the only encoding PASETO uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode canonical unpadded base64url; anything else raises :class:`PasetoError`."""
    if len(text) % 4 == 1 or _B64URL.fullmatch(text) is None:
        raise PasetoError("not canonical base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - guarded by the regex
        raise PasetoError("not canonical base64url") from exc
    # Non-zero trailing bits decode to the same bytes; only the canonical spelling passes.
    if b64encode(data) != text:
        raise PasetoError("not canonical base64url")
    return data


@lru_cache(maxsize=256)
def verifier(public_key: bytes) -> VerifyKey:
    """A cached VerifyKey: building one per token is measurable at door rates."""
    return VerifyKey(public_key)


def sign(
    message: bytes, secret_key: bytes, footer: bytes = b"", implicit_assertion: bytes = b""
) -> str:
    """Sign ``message`` as a v4.public token with a 64-byte libsodium secret key."""
    if not isinstance(secret_key, bytes | bytearray) or len(secret_key) != 64:
        raise PasetoError("secret key must be 64 bytes (seed || public key)")
    if not all(isinstance(x, bytes | bytearray) for x in (message, footer, implicit_assertion)):
        raise PasetoError("message, footer and implicit assertion must be bytes")
    signing_key = SigningKey(bytes(secret_key[:32]))
    if not hmac.compare_digest(bytes(signing_key.verify_key), bytes(secret_key[32:])):
        raise PasetoError("secret key's public half does not match its seed")
    signature = signing_key.sign(pae(_HEADER_BYTES, message, footer, implicit_assertion))
    token = HEADER + b64encode(bytes(message) + signature.signature)
    if footer:
        token += "." + b64encode(bytes(footer))
    return token


def split_footer(token: str) -> bytes:
    """The footer of a v4.public token, UNVERIFIED: only to pick the key to verify with."""
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise PasetoError("not a v4.public token")
    return b64decode(match.group(2)) if match.group(2) is not None else b""


def peek(token: str) -> tuple[bytes, bytes]:
    """``(message, footer)`` WITHOUT verifying anything: for display (``ticket inspect``) only."""
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise PasetoError("not a v4.public token")
    body = b64decode(match.group(1))
    if len(body) < _SIGNATURE_LEN:
        raise PasetoError("token too short")
    footer = b64decode(match.group(2)) if match.group(2) is not None else b""
    return body[:-_SIGNATURE_LEN], footer


def verify(
    token: str, public_key: bytes, footer: bytes | None = None, implicit_assertion: bytes = b""
) -> tuple[bytes, bytes]:
    """Verify a v4.public token and return ``(message, footer)``.

    With ``footer`` given, the token's footer must equal it (compared in constant time);
    with ``None`` any footer is accepted and returned (it is covered by the signature).
    """
    if not isinstance(token, str):
        raise PasetoError("token must be a string")
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise PasetoError("public key must be 32 bytes")
    if not isinstance(implicit_assertion, bytes) or (
        footer is not None and not isinstance(footer, bytes)
    ):
        raise PasetoError("footer and implicit assertion must be bytes")
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise PasetoError("not a v4.public token")
    body_text, footer_text = match.group(1), match.group(2)
    token_footer = b64decode(footer_text) if footer_text is not None else b""
    if footer is not None and not hmac.compare_digest(token_footer, footer):
        raise PasetoError("footer does not match")
    body = b64decode(body_text)
    if len(body) < _SIGNATURE_LEN:
        raise PasetoError("token too short")
    message = body[:-_SIGNATURE_LEN]
    signed = pae(_HEADER_BYTES, message, token_footer, implicit_assertion)
    try:
        verifier(public_key).verify(signed, body[-_SIGNATURE_LEN:])
    except (BadSignatureError, ValueError, TypeError) as exc:
        raise SignatureMismatch("bad signature") from exc
    return message, token_footer
