"""Fuzzing the TLS pins (:mod:`gateway.trust.tls_pin`, :mod:`gateway.clients.known_gateways`):
the certificate any server on the LAN presents to an owner or courier client, a pin as typed
or pasted, and the known-gateways file. Only :class:`~gateway.trust.tls_pin.PinError` (and
:class:`~gateway.clients.known_gateways.KnownGatewaysError` for the file) may escape, so an
impostor's odd certificate ends in "the gateway's key changed", not an internal error.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.clients.known_gateways import KnownGatewaysError, parse
from gateway.trust.tls_pin import PinError, parse_pin, spki_fingerprint
from tests.fuzz.fuzzing import ANY_TEXT, FUZZ, only

_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32))
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw")])
_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
CERT = (
    x509.CertificateBuilder()
    .subject_name(_NAME)
    .issuer_name(_NAME)
    .public_key(_KEY.public_key())
    .serial_number(1)
    .not_valid_before(_START)
    .not_valid_after(_START + datetime.timedelta(days=1))
    .sign(_KEY, None)
    .public_bytes(serialization.Encoding.DER)
)
ED25519_OID = bytes.fromhex("06032b6570")
# The same certificate with its key's algorithm an OID nobody knows (1.3.101.127).
_SPKI_OID_AT = CERT.find(ED25519_OID, CERT.find(ED25519_OID) + 1)
UNKNOWN_KEY_TYPE = CERT[:_SPKI_OID_AT] + bytes.fromhex("06032b657f") + CERT[_SPKI_OID_AT + 5 :]


@st.composite
def damaged_certificates(draw: st.DrawFn) -> bytes:
    data = bytearray(CERT)
    for _ in range(draw(st.integers(1, 3))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@FUZZ
@given(st.binary(max_size=300) | damaged_certificates())
# A well-formed certificate with a key type the library does not know: UnsupportedAlgorithm
# escaped, and the client ended in an internal error (bug found here).
@example(UNKNOWN_KEY_TYPE)
def test_any_certificate_is_pinned_or_refused(der: bytes) -> None:
    pin = only(PinError, lambda: spki_fingerprint(der))
    assert pin is None or len(pin) == 64


@FUZZ
@given(ANY_TEXT | st.text("0123456789abcdefABCDEF: \n", max_size=100))
def test_typed_pins_raise_only_pin_errors(text: str) -> None:
    only(PinError, lambda: parse_pin(text))


@FUZZ
@given(
    st.lists(
        st.tuples(ANY_TEXT, ANY_TEXT, ANY_TEXT).map(" ".join)
        | st.just(f"gw.local:8443 gw-home {'ab' * 32}")
        | ANY_TEXT,
        max_size=4,
    ).map("\n".join)
)
def test_known_gateways_files_raise_only_their_error(text: str) -> None:
    only(KnownGatewaysError, lambda: parse(text, "known_gateways"))


def test_the_control_certificate_pins() -> None:
    assert len(spki_fingerprint(CERT)) == 64
