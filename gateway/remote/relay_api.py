"""The gateway's signed requests to the relay for remote reach (docs/remote.md): a tunnel
token for its own name, and the DNS-01 TXT record published and withdrawn.

Every request is signed with the gateway's registered key (``cloud.signed_request``, the
scheme sync uses): the relay answers only for the name its operator assigned to this
gateway. The token's AES key arrives in the answer over the relay's HTTPS; it is never
logged.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from nacl.signing import SigningKey

from cloud.signed_request import gateway_principal, sign_request
from gateway.remote.errors import RelayRefused, RelayUnavailable

REQUEST_TIMEOUT_S = 20.0
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True)
class RelayAccess:
    """How the gateway reaches its relay: ``[cloud]``'s URL, TLS trust and the gateway key."""

    url: str
    gateway_id: str
    gateway_key: SigningKey = field(repr=False)
    pin_sha256: bytes | None = None
    ca_file: str | None = None

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        if not host:
            raise RelayUnavailable("the relay URL has no host")
        return host


@dataclass(frozen=True, slots=True)
class TunnelGrant:
    """The relay's answer to a tunnel request (``cloud.sni_front.TunnelGrant``, on the wire)."""

    host_name: str
    token: bytes = field(repr=False)
    aes_key: bytes = field(repr=False)
    aes_iv: bytes = field(repr=False)
    valid_s: int
    port: int


def read_grant(data: Any) -> TunnelGrant:
    """A tunnel grant from the relay's JSON, or :class:`RelayRefused` if it is malformed."""
    if not isinstance(data, dict):
        raise RelayRefused("the relay's tunnel answer is not an object")
    host, token, key, iv = (data.get(k) for k in ("host_name", "token", "aes_key", "aes_iv"))
    valid, port = data.get("valid_s"), data.get("port")
    if not (
        isinstance(host, str)
        and isinstance(token, str)
        and token.isascii()
        and isinstance(key, str)
        and _HEX.fullmatch(key)
        and len(key) == 64
        and isinstance(iv, str)
        and _HEX.fullmatch(iv)
        and len(iv) == 32
        and isinstance(valid, int)
        and isinstance(port, int)
        and 0 < port < 65536
    ):
        raise RelayRefused("the relay's tunnel answer is malformed")
    return TunnelGrant(
        host, token.encode("ascii"), bytes.fromhex(key), bytes.fromhex(iv), valid, port
    )


def _ssl_for(access: RelayAccess) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    if not access.url.startswith("https://"):
        return False
    if access.pin_sha256 is not None:
        return aiohttp.Fingerprint(access.pin_sha256)
    return ssl.create_default_context(cafile=access.ca_file)


class RelayApi:
    """The three remote-reach requests; one HTTP session, closed by :meth:`close`."""

    def __init__(self, access: RelayAccess) -> None:
        self.access = access
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
                connector=aiohttp.TCPConnector(ssl=_ssl_for(self.access), limit=2),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, body: bytes = b"") -> Any:
        headers = sign_request(
            self.access.gateway_key,
            gateway_principal(self.access.gateway_id),
            method,
            path,
            body,
            int(time.time()),
        )
        if body:
            headers["Content-Type"] = "application/json"
        url = self.access.url.rstrip("/") + path
        try:
            async with self._http().request(method, url, data=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise RelayUnavailable(f"relay unreachable: {type(exc).__name__}") from None
        try:
            data = json.loads(raw) if raw else {}
        except (ValueError, RecursionError):
            data = {}
        if status >= 500 or status == 429:
            raise RelayUnavailable(f"relay answered {status}")
        if status != 200:
            code = data.get("code", status) if isinstance(data, dict) else status
            raise RelayRefused(f"the relay refused: {code}")
        return data

    def _path(self, tail: str) -> str:
        return f"/v1/gateways/{self.access.gateway_id}/{tail}"

    async def tunnel_grant(self, name: str) -> TunnelGrant:
        body = json.dumps({"name": name}).encode()
        return read_grant(await self._request("POST", self._path("tunnel"), body))

    async def publish_challenge(self, name: str, value: str) -> None:
        body = json.dumps({"name": name, "value": value}).encode()
        await self._request("PUT", self._path("acme-challenge"), body)

    async def withdraw_challenge(self, name: str) -> None:
        await self._request("DELETE", self._path(f"acme-challenge?name={name}"))
