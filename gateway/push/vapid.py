"""The gateway's VAPID identity (RFC 8292) on py-vapid: its key file and its signed headers.

The key is a P-256 private key in a PEM file (mode 0600, made once, at ``threshold init`` or
the first start, never overwritten). Its public key, uncompressed and base64url (RFC 8292
§3.2), is the ``applicationServerKey`` the app subscribes with: a push service then accepts
pushes to that subscription only with a JWT signed by this key.

:class:`VapidSigner` signs the ``Authorization: vapid t=<JWT>,k=<key>`` header for one push
service origin (``aud``) with ``exp`` 12 h ahead (RFC 8292 §2: at most 24 h), and reuses it
for an hour rather than signing at every push.
"""

from __future__ import annotations

import contextlib
import stat
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from gateway.push.errors import PushKeyRefused
from gateway.trust.base64url import b64u_encode
from groundwork.files import write_file

#: How long a signed header lives (``exp``), and how long one is reused.
JWT_LIFETIME_S = 12 * 3600
REUSE_S = 3600


def ensure_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The VAPID key at ``path``, made (mode 0600, never overwriting) the first time."""
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with contextlib.suppress(FileExistsError):  # made meanwhile by another start
            write_file(path, pem)
    return load_key(path)


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        pem = path.read_bytes()
    except OSError as exc:
        raise PushKeyRefused(f"{path}: cannot read the VAPID key ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PushKeyRefused(f"{path}: readable by others (mode {mode:o}); run chmod 600 on it")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise PushKeyRefused(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise PushKeyRefused(f"{path}: a VAPID key is a P-256 key")
    return key


def public_key_b64u(key: ec.EllipticCurvePrivateKey) -> str:
    """The ``applicationServerKey``: the uncompressed point, base64url without padding."""
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64u_encode(raw)


class VapidSigner:
    """The signed VAPID headers for each push service origin (see the module docstring)."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        subject: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._vapid = Vapid02(private_key=key)
        self.subject = subject
        self.public_key = public_key_b64u(key)
        self._clock = clock
        self._headers: dict[str, tuple[float, dict[str, str]]] = {}

    def headers(self, audience: str) -> dict[str, str]:
        """``Authorization`` for a push to ``audience`` (``https://host[:port]``)."""
        now = self._clock()
        cached = self._headers.get(audience)
        if cached is not None and now < cached[0]:
            return cached[1]
        claims = {"sub": self.subject, "aud": audience, "exp": int(now) + JWT_LIFETIME_S}
        signed = self._vapid.sign(claims)
        headers = {"Authorization": str(signed["Authorization"])}
        if len(self._headers) > 64:
            self._headers.clear()
        self._headers[audience] = (now + REUSE_S, headers)
        return headers
