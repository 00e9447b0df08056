"""An attacker's tools against a gateway on loopback: raw HTTP over TLS, many connections
from many source addresses (all of 127.0.0.0/8 is loopback on Linux), and what the kernel
says about a process (open files, resident memory).

Every network wait has a timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

WAIT = 15.0


def tls_client() -> ssl.SSLContext:
    """A client context that accepts the gateway's self-signed certificate (an attacker pins
    nothing; the tests that need the certificate checked use the real client)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def source(i: int) -> str:
    """The i-th attacker source address on loopback: 127.0.1.x, 127.0.2.x, ..."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    tls: bool

    @classmethod
    def of(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        return cls(parts.hostname, parts.port, parts.scheme == "https")

    async def connect(
        self, *, src: str | None = None, tls: bool | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        use_tls = self.tls if tls is None else tls
        async with asyncio.timeout(WAIT):
            return await asyncio.open_connection(
                self.host,
                self.port,
                ssl=tls_client() if use_tls else None,
                local_addr=(src, 0) if src else None,
            )


@dataclass(frozen=True, slots=True)
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_reply(reader: asyncio.StreamReader, limit_s: float = WAIT) -> RawReply:
    """One HTTP/1.1 answer (with Content-Length, or up to EOF)."""
    async with asyncio.timeout(limit_s):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
    return RawReply(status, headers, body)


async def exchange(endpoint: Endpoint, data: bytes, *, src: str | None = None) -> RawReply:
    """Send raw bytes on a fresh connection and read one answer."""
    reader, writer = await endpoint.connect(src=src)
    try:
        writer.write(data)
        await writer.drain()
        return await read_reply(reader)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(WAIT):
                await writer.wait_closed()


def http_request(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    close: bool = True,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Content-Type: application/json")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def resident_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")
