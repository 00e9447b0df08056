"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1, between the gateway and the relay.

Each request is read whole (headers and Content-Length body), then meets one fate drawn
from a seeded RNG: forwarded; cut mid-request; cut mid-response (after the relay handled
it); delayed; duplicated (sent twice, either copy's answer returned); answered 500 or 503
with ``Retry-After``. ``down_for(seconds)`` makes it refuse everything for a while. Every
request goes upstream on a fresh connection, so fates never leak between requests.

Given several upstream ports, it is a round-robin load balancer too: each upstream
connection goes to the next port, so a retry, and a duplicated request's second copy, lands
on another relay process than the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

FATES = ("pass", "cut_request", "cut_response", "delay", "dup_first", "dup_second", "e500", "e503")


@dataclass
class FaultPlan:
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "pass": 0.45,
            "cut_request": 0.08,
            "cut_response": 0.1,
            "delay": 0.1,
            "dup_first": 0.07,
            "dup_second": 0.07,
            "e500": 0.07,
            "e503": 0.06,
        }
    )
    max_delay_s: float = 0.05
    seed: int = 7


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    try:
        body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return head + body


class FaultProxy:
    def __init__(self, upstream_port: int | Sequence[int], plan: FaultPlan | None = None) -> None:
        ports = [upstream_port] if isinstance(upstream_port, int) else list(upstream_port)
        self.upstream_ports = ports
        self._next = 0
        self.plan = plan or FaultPlan()
        self._rng = random.Random(self.plan.seed)
        self._server: asyncio.Server | None = None
        self._down_until = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self.fates: Counter[str] = Counter()
        self.port = 0
        self.captured = bytearray()
        self.retry_after = "0"  # every request and response that went through

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    def down_for(self, seconds: float) -> None:
        self._down_until = asyncio.get_running_loop().time() + seconds

    @property
    def upstream_port(self) -> int:
        """The next upstream, round robin."""
        port = self.upstream_ports[self._next % len(self.upstream_ports)]
        self._next += 1
        return port

    def _fate(self) -> str:
        names = list(self.plan.weights)
        return self._rng.choices(names, weights=[self.plan.weights[n] for n in names])[0]

    async def _upstream(self, request: bytes) -> bytes | None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            return None
        try:
            writer.write(request)
            await writer.drain()
            return await asyncio.wait_for(_read_message(reader), 30)
        except (ConnectionError, TimeoutError):
            return None
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                if asyncio.get_running_loop().time() < self._down_until:
                    self.fates["down"] += 1
                    return
                request = await _read_message(reader)
                if request is None:
                    return
                if asyncio.get_running_loop().time() < self._down_until:
                    self.fates["down"] += 1
                    return
                fate = self._fate()
                self.fates[fate] += 1
                self.captured += request
                if fate == "cut_request":
                    # Half the request reaches the relay, then both sides are dropped.
                    with contextlib.suppress(OSError):
                        _, up = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                        up.write(request[: len(request) // 2])
                        await up.drain()
                        up.close()
                    return
                if fate in ("e500", "e503"):
                    status = "500 Internal Server Error" if fate == "e500" else "503 Unavailable"
                    body = b'{"code":"injected"}'
                    writer.write(
                        f"HTTP/1.1 {status}\r\nRetry-After: {self.retry_after}\r\n"
                        "Content-Type: application/json"
                        f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    await writer.drain()
                    continue
                if fate == "delay":
                    await asyncio.sleep(self._rng.random() * self.plan.max_delay_s)
                response = await self._upstream(request)
                if fate in ("dup_first", "dup_second"):
                    second = await self._upstream(request)
                    response = second if fate == "dup_second" else response
                if response is None:
                    return
                self.captured += response
                if fate == "cut_response":
                    writer.write(response[: len(response) // 2])
                    await writer.drain()
                    return
                writer.write(response)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self._writers.discard(writer)
            writer.close()
