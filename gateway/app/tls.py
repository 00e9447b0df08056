"""The LAN API's TLS: the server's protocol profile, and its self-signed certificate.

Profile: Mozilla's "intermediate" configuration, restricted where Python allows. TLS 1.2
only with ECDHE key exchange and AEAD ciphers (the key is ECDSA, so the ECDHE-ECDSA GCM and
ChaCha20-Poly1305 suites), and TLS 1.3 with OpenSSL's defaults (all AEAD). Key exchange
groups: Python 3.11's ``ssl`` has no call for OpenSSL's group *list*; ``set_ecdh_curve``
sets exactly one group, for TLS 1.2 and 1.3 alike. The gateway sets P-256, which RFC 8446
§9.1 makes mandatory for every TLS 1.3 client and which every TLS 1.2 client of the
intermediate profile offers, so X448, P-521 and FFDHE are refused. The cost: X25519 and P-384,
which the profile also allows, are refused too (a client offering X25519 first gets a TLS 1.3
HelloRetryRequest for P-256).

Certificate: ECDSA P-256, self-signed, with Subject and Authority Key Identifiers (strict RFC
5280 validators want them even on a pinned trust anchor), key usage digitalSignature and
extended key usage serverAuth. It names ``<gateway id>.local``, ``localhost``, the host's
name, 127.0.0.1 and ::1, and the address the API is bound to, or, when bound to every
address (0.0.0.0, ::), the host's LAN addresses; never the unspecified address. It lives one
year and is renewed with the SAME key at start (and once a day while running) when it is
within 30 days of expiry, names other addresses than it should, or predates this profile.
Phones pin the key (:mod:`gateway.trust.tls_pin`), so renewal never strands them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError
from gateway.trust.tls_pin import spki_fingerprint

CERTIFICATE_LIFETIME = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
#: TLS 1.2 suites: ECDHE key exchange, AEAD only (Mozilla intermediate, ECDSA key).
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    )
)
#: The one key exchange group Python 3.11 lets the gateway set (see the module docstring).
GROUP = "prime256v1"

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_UNSPECIFIED = ("0.0.0.0", "::")  # noqa: S104 - names compared against, never bound


class TlsError(ConfigError):
    code = "bad_tls"


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The LAN API's server context (the profile in the module docstring)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.set_ecdh_curve(GROUP)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"{cert}, {key}: cannot load the TLS certificate ({exc})") from None
    return context


@dataclass(frozen=True, slots=True)
class CertificateNames:
    """What the certificate names: DNS names and IP addresses, in a stable order."""

    dns: tuple[str, ...]
    ips: tuple[str, ...]


def certificate_names(
    gateway_id: str, bind_host: str, hostname: str, lan_addresses: tuple[str, ...]
) -> CertificateNames:
    """The names for a gateway bound to ``bind_host`` (pure: the host facts come in)."""
    dns = {f"{gateway_id}.local", "localhost"}
    if _HOSTNAME.fullmatch(hostname) and hostname != "localhost":
        dns.add(hostname)
        if "." not in hostname:
            dns.add(f"{hostname}.local")
    ips = {"127.0.0.1", "::1"}
    bound = [] if bind_host in _UNSPECIFIED else [bind_host]
    for host in (*bound, *(lan_addresses if not bound else ())):
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            dns.add(host)
            continue
        if not address.is_unspecified:
            ips.add(address.compressed)
    return CertificateNames(tuple(sorted(dns)), tuple(sorted(ips)))


def host_names(gateway_id: str, bind_host: str) -> CertificateNames:
    """:func:`certificate_names` with this host's name and LAN addresses."""
    return certificate_names(gateway_id, bind_host, socket.gethostname(), lan_addresses())


def lan_addresses() -> tuple[str, ...]:
    """This host's usable addresses: neither loopback, link-local nor unspecified."""
    found: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    # The address the host would leave by: a UDP "connect" sends nothing.
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))
                found.add(str(sock.getsockname()[0]))
        except OSError:
            continue
    usable = []
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if not (address.is_unspecified or address.is_loopback or address.is_link_local):
            usable.append(address.compressed)
    return tuple(sorted(usable))


def new_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_certificate(
    key_pem: bytes, gateway_id: str, names: CertificateNames, now: dt.datetime
) -> bytes:
    """A self-signed certificate (PEM) for the key, valid from a day before ``now`` (clock
    skew) for :data:`CERTIFICATE_LIFETIME`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError("the TLS key is not an ECDSA key")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{gateway_id}.local")])
    alt: list[x509.GeneralName] = [x509.DNSName(name) for name in names.dns]
    alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in names.ips]
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + CERTIFICATE_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def renewal_reason(cert_pem: bytes, names: CertificateNames, now: dt.datetime) -> str | None:
    """Why the certificate should be renewed now, or None (pure)."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return "it is not a readable certificate"
    if cert.not_valid_after_utc - now <= RENEW_BEFORE:
        return f"it expires {cert.not_valid_after_utc:%Y-%m-%d}"
    try:
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "it predates the current profile (no key identifiers)"
    if cert.not_valid_after_utc - cert.not_valid_before_utc > CERTIFICATE_LIFETIME * 2:
        return "it predates the current profile (a ten-year lifetime)"
    have_dns = tuple(sorted(alt.get_values_for_type(x509.DNSName)))
    have_ips = tuple(sorted(ip.compressed for ip in alt.get_values_for_type(x509.IPAddress)))
    if (have_dns, have_ips) != (names.dns, names.ips):
        return "the names it should carry changed"
    return None


def renew_if_due(
    cert: Path, key: Path, gateway_id: str, names: CertificateNames, now: dt.datetime
) -> str | None:
    """Renew ``cert`` with the same key when :func:`renewal_reason` says so; the reason, or
    None. The new certificate replaces the old one atomically (written whole, then renamed)."""
    try:
        cert_pem = cert.read_bytes()
        key_pem = key.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the TLS certificate or key ({exc.strerror})") from None
    reason = renewal_reason(cert_pem, names, now)
    if reason is None:
        return None
    try:
        renewed = make_certificate(key_pem, gateway_id, names, now)
    except ValueError as exc:
        raise TlsError(f"{key}: cannot read the TLS key ({exc})") from None
    tmp = cert.with_name(f".{cert.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, renewed)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, cert)
    return reason


def refresh_certificate(
    cert: Path,
    key: Path,
    gateway_id: str,
    bind_host: str,
    context: ssl.SSLContext | None = None,
) -> str | None:
    """Renew the certificate when due, with this host's names (blocking: DNS, files; run it
    in a thread), and load the renewed one into ``context`` for the next handshakes. The
    reason it was renewed, or None."""
    names = host_names(gateway_id, bind_host)
    reason = renew_if_due(cert, key, gateway_id, names, dt.datetime.now(dt.UTC))
    if reason is not None and context is not None:
        context.load_cert_chain(cert, key)
    return reason


def tls_fingerprint(cert_path: Path) -> str:
    """The pin of the certificate at ``cert_path`` (SPKI SHA-256, :mod:`gateway.trust.tls_pin`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{cert_path}: cannot read the TLS certificate ({exc})") from None
    return spki_fingerprint(cert.public_bytes(serialization.Encoding.DER))


def chromium_spki_pin(cert_path: Path) -> str:
    """The same pin in base64 (what Chromium's ``--ignore-certificate-errors-spki-list``
    takes to trust this one certificate: the owner app's demo and browser tests)."""
    import base64

    return base64.b64encode(bytes.fromhex(tls_fingerprint(cert_path))).decode()
