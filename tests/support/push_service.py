"""A Web Push service on loopback for the tests, and the device side of a subscription.

:class:`PushService` is an aiohttp server on 127.0.0.1 over TLS (its own self-signed
certificate, which the gateway trusts through ``[push] ca_file``), answering RFC 8030 §5
pushes at ``/push/<token>`` with 201, or with the status a test sets for a token (410: the
subscription is gone), or never (``hang``: a push service that holds the request). It keeps
every request it received (headers, body, arrival time) and wakes waiters.

:class:`PushDevice` is what a browser holds for one subscription: a P-256 key pair and a
16-byte auth secret (RFC 8291 §3). It decrypts what the gateway sent with ``http_ece``, and
:func:`verify_vapid` checks the ``Authorization: vapid t=...,k=...`` header's ES256 JWT with
``cryptography`` alone (not the sender's library), RFC 8292 §2-3.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gateway.app.tls import host_names, make_certificate, new_key_pem

REPO = Path(__file__).resolve().parents[2]


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Received:
    token: str
    #: Lower-cased names (HTTP names are case-insensitive).
    headers: dict[str, str]
    body: bytes
    #: ``time.perf_counter()`` when the request's headers arrived (the push left the gateway).
    at: float


@dataclass
class PushService:
    directory: Path
    port: int = 0
    received: list[Received] = field(default_factory=list)
    #: A status to answer for a token (404, 410, 500...), instead of 201.
    answers: dict[str, int] = field(default_factory=dict)
    #: Tokens whose requests are held, never answered (until the service stops).
    hang: set[str] = field(default_factory=set)
    #: Told of each push as it arrives (the service in a process of its own reports them).
    on_receive: Callable[[Received], None] | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ca_file(self) -> Path:
        return self.directory / "push-service.pem"

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def endpoint(self, token: str) -> str:
        return f"{self.origin}/push/{token}"

    async def _push(self, request: web.Request) -> web.StreamResponse:
        at = time.perf_counter()
        token = request.match_info["token"]
        body = await request.read()
        got = Received(token, {k.lower(): v for k, v in request.headers.items()}, body, at)
        if self.on_receive is not None:
            self.on_receive(got)
        await self.arrived(got)
        if token in self.hang:
            await self._release.wait()
        status = self.answers.get(token, 201)
        return web.Response(
            status=status, headers={"Location": f"{self.origin}/m/{len(self.received)}"}
        )

    async def arrived(self, got: Received) -> None:
        async with self._arrived:
            self.received.append(got)
            self._arrived.notify_all()

    async def wait_for(self, count: int, timeout_s: float = 15.0) -> list[Received]:
        """Wait until ``count`` pushes have arrived (in all); return them all."""
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)

    def ssl_context(self) -> ssl.SSLContext:
        self.directory.mkdir(parents=True, exist_ok=True)
        key = new_key_pem()
        cert = make_certificate(
            key, "push-test", host_names("push-test", "127.0.0.1"), dt.datetime.now(dt.UTC)
        )
        key_file = self.directory / "push-service.key"
        key_file.write_bytes(key)
        key_file.chmod(0o600)
        self.ca_file.write_bytes(cert)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, key_file)
        return context


@contextlib.asynccontextmanager
async def running_push_service(directory: Path) -> AsyncIterator[PushService]:
    service = PushService(directory)
    app = web.Application()
    app.router.add_post("/push/{token}", service._push)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=service.ssl_context())
    await site.start()
    service.port = int(runner.addresses[0][1])
    try:
        yield service
    finally:
        service._release.set()
        await runner.cleanup()


class PushDevice:
    """One browser's subscription keys (RFC 8291 §3)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def subscription(self) -> dict[str, Any]:
        """As ``PushSubscription.toJSON()`` gives it to the app."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64u(self.public), "auth": b64u(self.auth)},
        }

    def decrypt(self, body: bytes) -> bytes:
        return bytes(
            http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        )


def verify_vapid(authorization: str, public_key_b64u: str) -> dict[str, Any]:
    """The claims of a ``vapid t=<JWT>,k=<key>`` header, after checking its ES256 signature
    with ``k``, and ``k`` is the gateway's key; AssertionError otherwise."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid", authorization
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    assert fields["k"] == public_key_b64u, "the header's key is not the gateway's"
    header_b64, payload_b64, signature_b64 = fields["t"].split(".")
    header = json.loads(unb64u(header_b64))
    assert header == {"typ": "JWT", "alg": "ES256"}, header
    signature = unb64u(signature_b64)
    assert len(signature) == 64, "an ES256 JWS signature is r || s, 32 bytes each"
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64u(fields["k"]))
    try:
        public.verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AssertionError("the VAPID JWT's signature does not verify") from None
    return dict(json.loads(unb64u(payload_b64)))


# -- the same service in a process of its own (the benchmark: its arrival times are then not
# delayed by the gateway's event loop; time.perf_counter is CLOCK_MONOTONIC, one clock for
# every process of the machine).


@contextlib.asynccontextmanager
async def push_service_process(directory: Path) -> AsyncIterator[PushService]:
    """A :class:`PushService` whose server runs in a child process (``python -m
    tests.support.push_service DIR``); ``received`` and ``wait_for`` work as in-process, the
    arrival times taken in the child. ``answers`` and ``hang`` are not carried over."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.push_service",
        str(directory),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        async with asyncio.timeout(30):
            first = json.loads(await process.stdout.readline())
        service = PushService(directory, port=int(first["port"]))

        async def read() -> None:
            assert process.stdout is not None
            while line := await process.stdout.readline():
                r = json.loads(line)
                await service.arrived(
                    Received(r["token"], r["headers"], unb64u(r["body"]), r["at"])
                )

        reader = asyncio.create_task(read())
        try:
            yield service
        finally:
            reader.cancel()
    finally:
        process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


async def _serve(directory: Path) -> None:
    def report(got: Received) -> None:
        line = {"token": got.token, "headers": got.headers, "body": b64u(got.body), "at": got.at}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    async with running_push_service(directory) as service:
        service.on_receive = report
        sys.stdout.write(json.dumps({"port": service.port}) + "\n")
        sys.stdout.flush()
        # Until the parent closes our standard input (or goes away).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1])))
