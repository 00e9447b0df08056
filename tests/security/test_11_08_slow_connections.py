"""Issue 11, finding 8: four slow connections blocked the whole LAN API, because request
bodies were read inside the 4-slot admission gate (a courier with a valid ticket waited
39.5 s).

The attack, over HTTPS on loopback: eight clients send a request head announcing a body and
then hold the body back, while 1,000 more connections from 50 addresses sit idle (100 of
them after completing TLS, half of those trickling a request head). A courier must still
open the door, each request answered within a second; the slow clients get a 408 of their
own or lose their place."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from ble.driver import LockState
from tests.support.attack import Endpoint, http_request, read_reply, source
from tests.support.service import running_harness

SLOW_BODIES = 8
IDLE = 1000
TLS = 100  # of them, completing TLS
ADDRESSES = 50


async def test_slow_and_idle_connections_do_not_block_a_courier(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "gw") as h, contextlib.AsyncExitStack() as held:
        endpoint = Endpoint.of(h.url)

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.callback(writer.transport.abort)

        # Slow bodies: a head announcing 1,000 bytes, then only 10 of them.
        slow = []
        for i in range(SLOW_BODIES):
            reader, writer = await endpoint.connect(src=source(i))
            await hold(reader, writer)
            head = http_request("POST", "/v1/access", body=b"x" * 1000, close=False)
            writer.write(head[: len(head) - 990])
            slow.append(reader)

        # Idle and trickling connections, from many addresses; some are refused or dropped
        # by the gateway as they come, which is the point: the attacker does not close them.
        async def idle(i: int, tls: bool) -> None:
            src = source(SLOW_BODIES + i % ADDRESSES)
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(3):  # a connection still in the backlog is held too
                    reader, writer = await endpoint.connect(src=src, tls=tls)
                await hold(reader, writer)
                if tls and i % 2 == 0:  # a TLS connection trickling a request head
                    writer.write(b"GET /v1/info HTTP/1.1\r\nHost: gatew")

        async with asyncio.timeout(40):
            # TLS handshakes in batches (on two shared cores a few hundred at once time out
            # on the attacker's side), then the plain connections all at once.
            for batch in range(0, TLS, 25):
                await asyncio.gather(*(idle(i, True) for i in range(batch, batch + 25)))
            await asyncio.gather(*(idle(i, False) for i in range(TLS, IDLE)))

        # The courier, from its own address, opens the door.
        t = h.ticket()
        started = time.monotonic()
        nonce = await asyncio.wait_for(h.client.challenge(), 5)
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        reply = await asyncio.wait_for(h.open(t, package_code="PKG-1"), 5)
        assert reply.status == 201, reply
        assert nonce
        assert time.monotonic() - started < 1.0 * 2  # two requests: challenge and access
        await h.wait_lock(LockState.UNLOCKED)

        # Each slow client got its own answer (its body did not come in time), or lost its
        # place to a newer connection while it dawdled: either way it cost only itself.
        for reader in slow:
            try:
                answer = await read_reply(reader, limit_s=10)
            except (asyncio.IncompleteReadError, ConnectionError):
                continue
            assert answer.status == 408, answer
            assert answer.json()["code"] == "request_timeout"
