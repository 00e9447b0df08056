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
* the whole string is checked, character by character (a regex ``$`` would accept a
  trailing newline): every body and footer character must be base64url;
* base64url must be canonical and unpadded: a decoder that ignores non-zero trailing bits
  lets two different strings carry one signature;
* an expected footer is compared in constant time.

Whatever the input, the only exception that leaves :func:`verify` or :func:`sign` is
:class:`PasetoError`.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey

from gateway.errors import GatewayError
from gateway.trust.base64url import NotBase64url, b64u_decode, b64u_encode

__all__ = [
    "HEADER",
    "PasetoError",
    "SignatureMismatch",
    "b64decode",
    "b64encode",
    "pae",
    "parse",
    "sign",
    "split",
    "verify",
    "verify_parsed",
]

HEADER = "v4.public."
_HEADER_BYTES = HEADER.encode("ascii")
SIGNATURE_LEN = 64
_LE64 = struct.Struct("<Q").pack
_LE64_MASK = 0x7FFF_FFFF_FFFF_FFFF


class PasetoError(GatewayError):
    """The token is not a well-formed, authentic v4.public token for this key."""

    code = "bad_token"


class SignatureMismatch(PasetoError):
    """A well-formed token whose signature does not verify under the key given."""


def pae(*pieces: bytes) -> bytes:
    """Pre-authentication encoding: LE64(count), then LE64(len) || piece for each piece.

    LE64 clears the top bit, as the specification requires for interoperability.
    """
    parts = [_LE64(len(pieces) & _LE64_MASK)]
    for piece in pieces:
        parts.append(_LE64(len(piece) & _LE64_MASK))
        parts.append(piece)
    return b"".join(parts)


def b64encode(data: bytes) -> str:
    """Unpadded base64url, the only encoding PASETO uses."""
    return b64u_encode(data)


def b64decode(text: str) -> bytes:
    """Decode canonical unpadded base64url; anything else raises :class:`PasetoError`."""
    try:
        return b64u_decode(text)
    except NotBase64url as exc:
        raise PasetoError("not canonical base64url") from exc


def split(token: str) -> tuple[str, str | None]:
    """The base64url body and footer of a v4.public token, checked for shape only."""
    if not isinstance(token, str) or not token.startswith(HEADER):
        raise PasetoError("not a v4.public token")
    parts = token[len(HEADER) :].split(".")
    if len(parts) > 2 or not all(parts):
        raise PasetoError("not a v4.public token")
    return parts[0], parts[1] if len(parts) == 2 else None


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


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A v4.public token taken apart but NOT verified: pass it to :func:`verify_parsed`."""

    message: bytes
    signature: bytes
    footer: bytes


def parse(token: str) -> ParsedToken:
    """Take a token apart (shape and encoding checked, signature not)."""
    body_text, footer_text = split(token)
    body = b64decode(body_text)
    if len(body) < SIGNATURE_LEN:
        raise PasetoError("token too short")
    footer = b64decode(footer_text) if footer_text is not None else b""
    return ParsedToken(body[:-SIGNATURE_LEN], body[-SIGNATURE_LEN:], footer)


def verify_parsed(parsed: ParsedToken, public_key: bytes, implicit_assertion: bytes = b"") -> bytes:
    """Verify a parsed token's signature and return its message."""
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise PasetoError("public key must be 32 bytes")
    if not isinstance(implicit_assertion, bytes):
        raise PasetoError("implicit assertion must be bytes")
    # libsodium's combined form (signature || message), built in one concatenation.
    signed = parsed.signature + pae(
        _HEADER_BYTES, parsed.message, parsed.footer, implicit_assertion
    )
    try:
        crypto_sign_open(signed, public_key)
    except (CryptoError, ValueError, TypeError) as exc:
        raise SignatureMismatch("bad signature") from exc
    return parsed.message


def peek(token: str) -> tuple[bytes, bytes]:
    """``(message, footer)`` WITHOUT verifying anything: for display (``ticket inspect``) only."""
    parsed = parse(token)
    return parsed.message, parsed.footer


def verify(
    token: str, public_key: bytes, footer: bytes | None = None, implicit_assertion: bytes = b""
) -> tuple[bytes, bytes]:
    """Verify a v4.public token and return ``(message, footer)``.

    With ``footer`` given, the token's footer must equal it (compared in constant time);
    with ``None`` any footer is accepted and returned (it is covered by the signature).
    """
    if not isinstance(token, str):
        raise PasetoError("token must be a string")
    if footer is not None and not isinstance(footer, bytes):
        raise PasetoError("footer must be bytes")
    body_text, footer_text = split(token)
    token_footer = b64decode(footer_text) if footer_text is not None else b""
    if footer is not None and not hmac.compare_digest(token_footer, footer):
        raise PasetoError("footer does not match")
    body = b64decode(body_text)
    if len(body) < SIGNATURE_LEN:
        raise PasetoError("token too short")
    parsed = ParsedToken(body[:-SIGNATURE_LEN], body[-SIGNATURE_LEN:], token_footer)
    return verify_parsed(parsed, public_key, implicit_assertion), token_footer
