"""Signed-in app sessions: who holds a session cookie, with which CSRF token, until when.

Held in memory on purpose: sessions are short-lived, a restart signs every device out (the
next act needs a passkey anyway), and a revoked device's sessions end at once
(:meth:`AppSessions.end_device`). The cookie carries 32 random bytes; the table is keyed by
their SHA-256, so a memory dump or a log line never shows a usable cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.owner.acts import Role
from gateway.owner.errors import CsrfRefused, NotSignedIn
from gateway.trust.base64url import b64u_encode

MAX_SESSIONS = 256


@dataclass(frozen=True, slots=True)
class AppSession:
    device_id: str
    role: Role
    csrf: str
    expires_at: float  # monotonic


def _key(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode()).digest()


class AppSessions:
    """The signed-in sessions (see the module docstring)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._by_key: dict[bytes, AppSession] = {}

    def start(self, device_id: str, role: Role) -> tuple[str, AppSession]:
        """A new session for ``device_id``: the cookie value and the session."""
        now = self._clock()
        self._by_key = {k: s for k, s in self._by_key.items() if s.expires_at > now}
        while len(self._by_key) >= MAX_SESSIONS:
            self._by_key.pop(min(self._by_key, key=lambda k: self._by_key[k].expires_at))
        cookie = b64u_encode(secrets.token_bytes(32))
        session = AppSession(
            device_id, role, b64u_encode(secrets.token_bytes(24)), now + self.ttl_s
        )
        self._by_key[_key(cookie)] = session
        return cookie, session

    def get(self, cookie: str | None) -> AppSession:
        # ASCII only (the cookies issued are base64url): a header byte that is not UTF-8 reaches
        # Python as a lone surrogate, which hashing the cookie could not encode (a 500).
        if not cookie or len(cookie) > 100 or not cookie.isascii():
            raise NotSignedIn("sign in with your passkey")
        session = self._by_key.get(_key(cookie))
        if session is None:
            raise NotSignedIn("this session has ended; sign in again")
        if session.expires_at <= self._clock():
            del self._by_key[_key(cookie)]
            raise NotSignedIn("this session has expired; sign in again")
        return session

    def check_csrf(self, session: AppSession, token: str | None) -> None:
        if (
            token is None
            or not token.isascii()
            or not hmac.compare_digest(session.csrf.encode(), token.encode())
        ):
            raise CsrfRefused("missing or wrong CSRF token")

    def end(self, cookie: str | None) -> None:
        if cookie and cookie.isascii():
            self._by_key.pop(_key(cookie), None)

    def end_device(self, device_id: str) -> int:
        """End every session of ``device_id``; return how many."""
        keys = [k for k, s in self._by_key.items() if s.device_id == device_id]
        for k in keys:
            del self._by_key[k]
        return len(keys)

    def alive(self, session: AppSession) -> bool:
        return any(s is session for s in self._by_key.values())
