"""A reference client of the LAN API: what a courier's or the owner's phone app does.

Used by ``threshold courier`` and ``threshold owner``, by the demo and by the tests, so the
API is always exercised the way docs/api.md describes it.

TLS is always pinned to the gateway's KEY (:class:`KeyPin`, the SPKI SHA-256 of
:mod:`gateway.trust.tls_pin`): the self-signed certificate cannot be checked against a CA,
and a pin on the certificate itself would break when the gateway renews it. Given no pin, a
client pins the first key it sees and holds every later connection to it;
:mod:`gateway.clients.known_gateways` decides, across runs, which pin to give. Owner requests
are signed for the gateway id and the key this client actually saw (docs/api.md, owner
request signatures v2), so no other server can replay them to the gateway.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from nacl.signing import SigningKey

from gateway.errors import GatewayError
from gateway.trust.base64url import b64u_decode, b64u_encode
from gateway.trust.owner_request import OwnerAudience, sign_request
from gateway.trust.proof import proof_message
from gateway.trust.tls_pin import PinError, parse_pin, spki_fingerprint

DEFAULT_TIMEOUT_S = 30.0


class ApiProblem(GatewayError):
    """The gateway answered with a problem+json (or an unexpected status)."""

    code = "api_problem"

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code  # type: ignore[misc]
        self.detail = detail


def unverified_claims(token: str) -> dict[str, Any]:
    """A ticket's claims WITHOUT checking its signature: what the holder's own app reads to
    know its ticket id. Never used to decide anything."""
    import base64
    import binascii

    try:
        payload = token.split(".")[2]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))[:-64]
        claims = json.loads(raw)
    # RecursionError: a payload nested past the JSON parser's depth is just unreadable.
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise GatewayError("the ticket is not a readable v4.public token") from None
    if not isinstance(claims, dict):
        raise GatewayError("the ticket's payload is not a JSON object")
    return claims


class GatewayUnreachable(GatewayError):
    code = "gateway_unreachable"


class GatewayKeyMismatch(GatewayUnreachable):
    """The server presented another TLS key than the one pinned for this gateway."""

    code = "gateway_key_changed"

    def __init__(self, address: str, expected: str, got: str) -> None:
        super().__init__(
            f"the gateway at {address} presents TLS key fingerprint {got}, which does not "
            f"match the pinned fingerprint {expected}"
        )
        self.address = address
        self.expected = expected
        self.got = got


class KeyPin(aiohttp.Fingerprint):
    """Checks each new TLS connection's key against a pin (SPKI SHA-256, lowercase hex).

    With no pin, the first key seen becomes the pin for the rest of this client's life.
    aiohttp calls :meth:`check` right after every handshake, before any byte is sent.
    """

    def __init__(self, expected: str | None) -> None:
        super().__init__(bytes(32))  # the base class insists on a SHA-256 digest; unused
        self.expected = expected
        self.seen: str | None = None

    def check(self, transport: asyncio.Transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)
        try:
            got = spki_fingerprint(der) if der else ""
        except PinError:
            got = ""  # an unreadable certificate matches no pin: refused as a mismatch
        expected = self.expected or got
        if not got or not hmac.compare_digest(got, expected):
            host, port, *_ = transport.get_extra_info("peername")
            raise aiohttp.ServerFingerprintMismatch(
                bytes.fromhex(expected), bytes.fromhex(got), host, port
            )
        self.expected = self.seen = got


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]


def gateway_address(base_url: str) -> str:
    """``host:port`` of a gateway URL, lower case, the port explicit (``[v6]:port``)."""
    try:
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise GatewayError(f"{base_url}: not a gateway URL") from None
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("http", "https"):
        raise GatewayError(f"{base_url}: not a gateway URL (https://HOST:PORT)")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GatewayClient:
    def __init__(
        self,
        base_url: str,
        *,
        fingerprint: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.address = gateway_address(self.base_url)
        self.pin: KeyPin | None = None
        if self.base_url.startswith("https://"):
            self.pin = KeyPin(parse_pin(fingerprint) if fingerprint else None)
        self._gateway_id: str | None = None
        #: The proof of possession of the last ``open``: the visitor's secret for checking
        #: its receipt's visit tag (docs/api.md, "Receipts").
        self.last_open_proof: bytes | None = None
        connector = aiohttp.TCPConnector(ssl=self.pin or True, limit=0)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)
        )

    @property
    def key_fingerprint(self) -> str | None:
        """The pin of the TLS key this client has seen (None before the first connection,
        and over plain HTTP)."""
        return self.pin.seen if self.pin is not None else None

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        """One request; returns the status and JSON body whatever the status."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        hdrs = {"Content-Type": "application/json"} if data else {}
        hdrs.update(headers or {})
        try:
            async with self._session.request(
                method, self.base_url + path, data=data or None, headers=hdrs
            ) as resp:
                text = await resp.read()
                try:
                    parsed = json.loads(text) if text else {}
                except (ValueError, RecursionError):
                    parsed = {"raw": text.decode("utf-8", "replace")}
                return Reply(resp.status, parsed if isinstance(parsed, dict) else {"value": parsed})
        except aiohttp.ServerFingerprintMismatch as exc:
            raise GatewayKeyMismatch(self.address, exc.expected.hex(), exc.got.hex()) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayUnreachable(f"cannot reach {self.base_url}: {exc}") from None

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        expect: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
    ) -> Reply:
        reply = await self.request(method, path, body, headers=headers)
        if reply.status not in expect:
            raise ApiProblem(
                reply.status,
                str(reply.body.get("code", f"http_{reply.status}")),
                str(reply.body.get("detail", "")),
            )
        return reply

    # -- courier -------------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        body = (await self.call("GET", "/v1/info")).body
        self._gateway_id = str(body.get("gateway_id", ""))
        return body

    async def challenge(self) -> bytes:
        reply = await self.call("POST", "/v1/challenges", expect=(201,))
        return b64u_decode(reply.body["nonce"])

    async def open(
        self,
        *,
        gateway_id: str,
        ticket: str,
        jti: str,
        holder: SigningKey,
        door: str,
        package_code: str | None = None,
        revocations: str | None = None,
    ) -> Reply:
        """Challenge, sign, present: the 201/202 reply, or ApiProblem."""
        nonce = await self.challenge()
        proof = bytes(holder.sign(proof_message(gateway_id, nonce, jti, "open")).signature)
        self.last_open_proof = proof
        body: dict[str, Any] = {
            "ticket": ticket,
            "door": door,
            "nonce": b64u_encode(nonce),
            "proof": b64u_encode(proof),
        }
        if package_code is not None:
            body["package_code"] = package_code
        if revocations is not None:
            body["revocations"] = revocations
        return await self.call("POST", "/v1/access", body, expect=(201, 202))

    async def session(self, session_id: str) -> dict[str, Any]:
        return (await self.call("GET", f"/v1/access/{session_id}")).body

    async def done(
        self, *, gateway_id: str, session_id: str, jti: str, holder: SigningKey
    ) -> dict[str, Any]:
        nonce = await self.challenge()
        proof = holder.sign(proof_message(gateway_id, nonce, jti, "done")).signature
        body = {"nonce": b64u_encode(nonce), "proof": b64u_encode(proof)}
        return (await self.call("POST", f"/v1/access/{session_id}/done", body)).body

    # -- owner ---------------------------------------------------------------------------------

    async def audience(self) -> OwnerAudience:
        """The gateway owner requests are signed for: the id it gives and the key this client
        saw (an impostor's id may be the real one, its key cannot be)."""
        if self._gateway_id is None or (self.pin is not None and self.pin.seen is None):
            await self.info()
        assert self._gateway_id is not None
        return OwnerAudience(self._gateway_id, self.key_fingerprint)

    async def owner_headers(
        self, owner: SigningKey, method: str, path_qs: str, body: bytes
    ) -> dict[str, str]:
        audience = await self.audience()
        nonce = b64u_encode(secrets.token_bytes(24))
        return sign_request(owner, audience, method, path_qs, body, int(time.time()), nonce)

    async def owner(
        self,
        owner: SigningKey,
        method: str,
        path_qs: str,
        body: dict[str, Any] | None = None,
        *,
        expect: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = await self.owner_headers(owner, method, path_qs, raw)
        reply = await self.request(method, path_qs, headers=headers, raw=raw)
        if reply.status not in expect:
            raise ApiProblem(
                reply.status,
                str(reply.body.get("code", f"http_{reply.status}")),
                str(reply.body.get("detail", "")),
            )
        return reply.body
