"""Canonical unpadded base64url (RFC 4648 §5, no padding): the text form of every key, nonce,
signature and token piece in Threshold.

Strict on purpose: a decoder that accepts padding, the standard alphabet, whitespace or
non-zero trailing bits lets two different strings carry the same bytes, and a signature over
one then vouches for the other. There is one implementation, used by PASETO, the request
signatures, the configuration, the relay and the clients.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["NotBase64url", "b64u_decode", "b64u_encode"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_ALPHABET_BYTES = _ALPHABET.encode("ascii")
_B64_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_PADDING = {0: b"", 2: b"==", 3: b"="}
# Bits of the last character that carry no data, by length mod 4.
_UNUSED_BITS = {2: 0x0F, 3: 0x03}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


class NotBase64url(ValueError):
    """The text is not canonical unpadded base64url."""


def b64u_encode(raw: bytes) -> str:
    """Unpadded base64url of ``raw``."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Decode canonical unpadded base64url; anything else raises :class:`NotBase64url`."""
    if not isinstance(text, str):
        raise NotBase64url("not canonical base64url")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise NotBase64url("not canonical base64url") from exc
    remainder = len(raw) & 3
    # Deleting every alphabet character leaves exactly the characters that are not allowed
    # (padding, '+', '/', whitespace...), so the lenient decoder below never sees one.
    if remainder == 1 or raw.translate(None, _ALPHABET_BYTES):
        raise NotBase64url("not canonical base64url")
    if remainder and _B64_VALUE[text[-1]] & _UNUSED_BITS[remainder]:
        # Non-zero trailing bits decode to the same bytes: only the canonical spelling passes.
        raise NotBase64url("not canonical base64url")
    try:
        return binascii.a2b_base64((raw + _PADDING[remainder]).translate(_TO_STANDARD))
    except binascii.Error as exc:  # unreachable after the checks above; kept for the contract
        raise NotBase64url("not canonical base64url") from exc
