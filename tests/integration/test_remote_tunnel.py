"""Remote reach through the relay's SNI front (docs/remote.md): a gateway's outbound snitun
tunnel, a browser-like TLS client reaching the gateway by name, the relay's side carrying
TLS records only, and the tunnel's recovery when it drops or the relay restarts."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from pathlib import Path

from nacl.signing import SigningKey

from tests.support.remote import (
    DOMAIN,
    WAIT_S,
    Gateway,
    LoopbackCa,
    RecordingProxy,
    TlsEndpoint,
    start_remote_relay,
    tls_exchange,
    tls_records_only,
)

HOME = f"home.{DOMAIN}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_browser_reaches_the_gateway_by_name_and_the_relay_sees_only_tls(
    tmp_path: Path,
) -> None:
    ca = LoopbackCa.new()
    gateway = Gateway("gw-home", SigningKey.generate())
    endpoint = TlsEndpoint("home", ca.server_context(HOME, tmp_path))
    await endpoint.start()
    server, url = await start_remote_relay(tmp_path / "relay", {"home": gateway})
    assert server.relay.front is not None
    proxy = RecordingProxy(server.relay.front.port)
    await proxy.start()
    tunnel = gateway.tunnel(url, "home", endpoint.port)
    try:
        await tunnel.start()
        await asyncio.wait_for(tunnel.up.wait(), WAIT_S)
        assert tunnel.status.host_name == HOME
        marker = b"PLANTED-MARKER-the-door-code-is-4711"
        answer = await tls_exchange(proxy.port, HOME, ca.client_context(), marker)
        assert answer == b"home: " + marker + b"\n"
        assert endpoint.sessions == 1
        # The relay's side of the connection: TLS records, the marker nowhere in them.
        assert tls_records_only(bytes(proxy.to_relay))
        assert tls_records_only(bytes(proxy.from_relay))
        assert marker not in proxy.to_relay
        assert marker not in proxy.from_relay
        assert b"4711" not in proxy.to_relay + proxy.from_relay
    finally:
        await tunnel.stop()
        await proxy.stop()
        await server.stop()
        await endpoint.stop()


async def test_the_tunnel_comes_back_after_the_relay_restarts(tmp_path: Path) -> None:
    ca = LoopbackCa.new()
    gateway = Gateway("gw-home", SigningKey.generate())
    endpoint = TlsEndpoint("home", ca.server_context(HOME, tmp_path))
    await endpoint.start()
    port, front_port = _free_port(), _free_port()
    server, url = await start_remote_relay(
        tmp_path / "relay", {"home": gateway}, port=port, front_port=front_port
    )
    tunnel = gateway.tunnel(url, "home", endpoint.port, min_retry_s=0.2, backoff_cap_s=0.5)
    try:
        await tunnel.start()
        await asyncio.wait_for(tunnel.up.wait(), WAIT_S)
        assert await tls_exchange(front_port, HOME, ca.client_context(), b"one") == b"home: one\n"

        await server.stop()  # the relay goes away: the tunnel drops
        await asyncio.wait_for(tunnel.down.wait(), WAIT_S)
        assert not tunnel.up.is_set()

        server, _ = await start_remote_relay(
            tmp_path / "relay", {"home": gateway}, port=port, front_port=front_port
        )
        await asyncio.wait_for(tunnel.up.wait(), WAIT_S)
        assert await tls_exchange(front_port, HOME, ca.client_context(), b"two") == b"home: two\n"
        assert tunnel.status.openings == 2
    finally:
        await tunnel.stop()
        await server.stop()
        await endpoint.stop()


async def test_a_large_stream_arrives_whole_both_ways(tmp_path: Path) -> None:
    """Megabytes each way through the relay and the tunnel's 64 KiB messages, byte for byte."""
    ca = LoopbackCa.new()
    gateway = Gateway("gw-home", SigningKey.generate())
    blob = os.urandom(6 * 1024 * 1024 + 123)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = await reader.readexactly(len(blob))
        writer.write(hashlib.sha256(received).digest() + blob)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(
        serve, "127.0.0.1", 0, ssl=ca.server_context(HOME, tmp_path)
    )
    port = int(server.sockets[0].getsockname()[1])
    relay, url = await start_remote_relay(tmp_path / "relay", {"home": gateway})
    assert relay.relay.front is not None
    tunnel = gateway.tunnel(url, "home", port)
    try:
        await tunnel.start()
        await asyncio.wait_for(tunnel.up.wait(), WAIT_S)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", relay.relay.front.port, ssl=ca.client_context(), server_hostname=HOME
        )
        writer.write(blob)
        await writer.drain()
        digest = await asyncio.wait_for(reader.readexactly(32), WAIT_S)
        back = await asyncio.wait_for(reader.readexactly(len(blob)), WAIT_S)
        writer.close()
        assert digest == hashlib.sha256(blob).digest()
        assert back == blob
    finally:
        await tunnel.stop()
        await relay.stop()
        server.close()
