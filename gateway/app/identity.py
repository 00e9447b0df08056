"""The gateway's identity on disk: its Ed25519 key and its self-signed TLS certificate.

Key files hold the key as base64url text (libsodium's 64-byte secret key: seed then public
key; a bare 32-byte seed is accepted too), created with mode 0600 and ``O_EXCL`` so that an
existing file is never overwritten. A key file readable by group or others is refused: the
gateway key signs the audit checkpoints, and a copy of it would let anyone forge them.

The TLS certificate is an ECDSA P-256 self-signed certificate (cryptography). Phones cannot
check it against a CA, so they pin its SHA-256 fingerprint, which mDNS and ``/v1/info``
publish and tickets can carry. The fingerprint is the lowercase hex SHA-256 of the DER.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import stat
from pathlib import Path

from nacl.signing import SigningKey

from gateway.errors import ConfigError, GatewayError
from gateway.trust.base64url import b64u_decode, b64u_encode


class KeyFileError(GatewayError):
    code = "bad_key_file"


def new_signing_key_text() -> tuple[SigningKey, str]:
    key = SigningKey.generate()
    secret64 = bytes(key) + bytes(key.verify_key)
    return key, b64u_encode(secret64) + "\n"


def load_signing_key(path: Path, *, check_mode: bool = True) -> SigningKey:
    """Read an Ed25519 secret key file (base64url of 64 or 32 bytes)."""
    try:
        st = path.stat()
        text = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc})") from None
    if check_mode and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: key file is readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            "run chmod 600 on it"
        )
    try:
        raw = b64u_decode(text)
    except ValueError:
        raise KeyFileError(f"{path}: not a base64url key") from None
    if len(raw) == 64:
        key = SigningKey(raw[:32])
        if bytes(key.verify_key) != raw[32:]:
            raise KeyFileError(f"{path}: the public half does not match the secret half")
        return key
    if len(raw) == 32:
        return SigningKey(raw)
    raise KeyFileError(f"{path}: an Ed25519 secret key is 64 (or 32) bytes, not {len(raw)}")


def make_tls_certificate(gateway_id: str, hosts: list[str]) -> tuple[bytes, bytes]:
    """A self-signed certificate and its key, both PEM, valid for ten years."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{gateway_id}.local")])
    alt: list[x509.GeneralName] = [
        x509.DNSName(f"{gateway_id}.local"),
        x509.DNSName("localhost"),
    ]
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def tls_fingerprint(cert_path: Path) -> str:
    """Lowercase hex SHA-256 of the certificate's DER encoding."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{cert_path}: cannot read the TLS certificate ({exc})") from None
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def tls_spki_pin(cert_path: Path) -> str:
    """The base64 SHA-256 of the certificate's public key (what Chromium's
    ``--ignore-certificate-errors-spki-list`` takes to trust this one certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
