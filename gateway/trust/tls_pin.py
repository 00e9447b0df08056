"""The gateway's TLS pin: the SHA-256 of its certificate's public key (SPKI), docs/api.md.

Phones cannot check the gateway's self-signed certificate against a CA, so they pin it. The
pin is on the *key*, not on the certificate: the gateway renews its certificate (same key)
before it expires, and a pin on the certificate would strand every phone that holds it.
This is fingerprint version 2; version 1 (until this change) hashed the certificate's DER.

The fingerprint is the lowercase hex SHA-256 of the DER-encoded SubjectPublicKeyInfo, the
same value ``openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum``
prints, so anyone can check it by hand.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re

from gateway.errors import GatewayError

#: The mDNS TXT ``fpalg`` value naming this fingerprint's algorithm (docs/api.md).
ALGORITHM = "spki-sha256"

_HEX64 = re.compile(r"[0-9a-f]{64}")


class PinError(GatewayError):
    """A pin or a certificate that cannot be read."""

    code = "bad_pin"


def spki_fingerprint(cert_der: bytes) -> str:
    """The pin of a DER certificate: lowercase hex SHA-256 of its SubjectPublicKeyInfo."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        key = x509.load_der_x509_certificate(cert_der).public_key()
    except (ValueError, UnsupportedAlgorithm):
        # UnsupportedAlgorithm: a well-formed certificate whose key type the library does not
        # know (any server can present one): no pin can match it.
        raise PinError("the peer's certificate is not readable DER") from None
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def parse_pin(text: str) -> str:
    """A pin as typed or pasted: 64 hex digits, optionally with ``:`` between bytes."""
    pin = text.strip().lower().replace(":", "")
    if not _HEX64.fullmatch(pin):
        raise PinError("a TLS key fingerprint is 64 hex digits (SHA-256)")
    return pin
