"""The gateway's identity on disk: its Ed25519 key (the TLS certificate is ``gateway.app.tls``).

Key files hold the key as base64url text (libsodium's 64-byte secret key: seed then public
key; a bare 32-byte seed is accepted too), created with mode 0600 and ``O_EXCL`` so that an
existing file is never overwritten. A key file readable by group or others is refused: the
gateway key signs the audit checkpoints, and a copy of it would let anyone forge them.
"""

from __future__ import annotations

import stat
from pathlib import Path

from nacl.signing import SigningKey

from gateway.errors import GatewayError
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
