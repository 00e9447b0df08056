"""Attacks on remote reach (docs/remote.md): a gateway claiming another's name, names the
relay does not route, forged and unsigned tunnel requests, a tunnel token the relay never
issued, a connection for a name whose gateway is away, and an owner's connection that stops
reading (what the relay holds for it is bounded in bytes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography.fernet import Fernet
from nacl.signing import SigningKey
from snitun.client.client_peer import ClientPeer
from snitun.client.connector import Connector
from snitun.exceptions import SniTunConnectionError
from snitun.utils.server import generate_client_token

from cloud import sni_channel
from cloud.signed_request import gateway_principal, sign_request
from gateway.remote.errors import RelayRefused
from gateway.remote.relay_api import RelayAccess, RelayApi
from tests.support.remote import (
    DOMAIN,
    WAIT_S,
    Gateway,
    LoopbackCa,
    TlsEndpoint,
    start_remote_relay,
    tls_exchange,
)

HOME = f"home.{DOMAIN}"


async def _refusal(url: str, gateway: Gateway, name: str) -> str:
    api = RelayApi(RelayAccess(url, gateway.gateway_id, gateway.key))
    try:
        with pytest.raises(RelayRefused) as refused:
            await api.tunnel_grant(name)
        return refused.value.message
    finally:
        await api.close()


async def test_a_gateway_cannot_get_a_token_for_another_gateways_name(tmp_path: Path) -> None:
    home, mallory = (
        Gateway("gw-home", SigningKey.generate()),
        Gateway("gw-m", SigningKey.generate()),
    )
    server, url = await start_remote_relay(tmp_path, {"home": home, "mallory": mallory})
    try:
        assert "name_not_yours" in await _refusal(url, mallory, "home")
        assert "name_not_routed" in await _refusal(url, mallory, "elsewhere")
        assert "bad_remote_name" in await _refusal(url, mallory, "Home.relay.test")
        # Its own name it gets: the refusals above were about the name, not the gateway.
        api = RelayApi(RelayAccess(url, mallory.gateway_id, mallory.key))
        try:
            assert (await api.tunnel_grant("mallory")).host_name == f"mallory.{DOMAIN}"
        finally:
            await api.close()
    finally:
        await server.stop()


async def test_a_request_signed_by_another_key_or_not_at_all_is_refused(tmp_path: Path) -> None:
    home = Gateway("gw-home", SigningKey.generate())
    server, url = await start_remote_relay(tmp_path, {"home": home})
    body = json.dumps({"name": "home"}).encode()
    path = f"/v1/gateways/{home.gateway_id}/tunnel"
    forged = sign_request(
        SigningKey.generate(),
        gateway_principal(home.gateway_id),
        "POST",
        path,
        body,
        int(time.time()),
    )
    try:
        async with aiohttp.ClientSession() as session:
            for headers in (forged, {}):
                async with session.post(url + path, data=body, headers=headers) as response:
                    assert response.status == 401
                    assert (await response.json())["code"] == "unauthorized"
            # Properly signed, it is answered once; the same request replayed is refused.
            signed = sign_request(
                home.key, gateway_principal(home.gateway_id), "POST", path, body, int(time.time())
            )
            async with session.post(url + path, data=body, headers=signed) as response:
                assert response.status == 200
            async with session.post(url + path, data=body, headers=signed) as response:
                assert response.status == 401
    finally:
        await server.stop()


async def test_a_tunnel_token_the_relay_never_issued_is_refused(tmp_path: Path) -> None:
    ca = LoopbackCa.new()
    home = Gateway("gw-home", SigningKey.generate())
    server, _ = await start_remote_relay(tmp_path, {"home": home})
    assert server.relay.front is not None
    endpoint = TlsEndpoint("impostor", ca.server_context(HOME, tmp_path))
    await endpoint.start()
    # Mallory mints a snitun token for home with a Fernet key of her own.
    key, iv = b"k" * 32, b"i" * 16
    token = generate_client_token(
        [Fernet.generate_key().decode()], timedelta(minutes=5), HOME, key, iv
    )
    peer = ClientPeer("127.0.0.1", server.relay.front.port)
    try:
        with pytest.raises(SniTunConnectionError):
            await peer.start(Connector("127.0.0.1", endpoint.port), token, key, iv)
        assert not server.relay.front.connected(HOME)
        with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
            await tls_exchange(server.relay.front.port, HOME, ca.client_context(), b"hi")
        assert endpoint.sessions == 0
    finally:
        await server.stop()
        await endpoint.stop()


async def test_one_gateways_tunnel_never_receives_another_names_connections(
    tmp_path: Path,
) -> None:
    ca = LoopbackCa.new()
    home, mallory = (
        Gateway("gw-home", SigningKey.generate()),
        Gateway("gw-m", SigningKey.generate()),
    )
    server, url = await start_remote_relay(tmp_path, {"home": home, "mallory": mallory})
    assert server.relay.front is not None
    front = server.relay.front.port
    # Mallory's endpoint even holds a certificate for home (as if she had stolen one).
    trap = TlsEndpoint("mallory", ca.server_context(HOME, tmp_path))
    await trap.start()
    tunnel = mallory.tunnel(url, "mallory", trap.port)
    try:
        await tunnel.start()
        await asyncio.wait_for(tunnel.up.wait(), WAIT_S)
        # Home's gateway is away: a connection for home is closed, never given to Mallory.
        with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
            await tls_exchange(front, HOME, ca.client_context(), b"for home")
        # Names the relay does not route, inside its domain or outside, are closed too.
        for name in (f"nobody.{DOMAIN}", "home.elsewhere.test", f"x.mallory.{DOMAIN}", DOMAIN):
            with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
                await tls_exchange(front, name, ca.client_context(), b"probe")
        assert trap.sessions == 0
    finally:
        await tunnel.stop()
        await server.stop()
        await trap.stop()


async def test_garbage_on_the_front_is_closed(tmp_path: Path) -> None:
    home = Gateway("gw-home", SigningKey.generate())
    server, _ = await start_remote_relay(tmp_path, {"home": home})
    assert server.relay.front is not None
    try:
        for junk in (b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\xff\xff" + b"\0" * 64, b"gAAAA"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.relay.front.port)
            writer.write(junk)
            await writer.drain()
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
            writer.close()
    finally:
        await server.stop()


def _client_hello(server_name: str) -> bytes:
    """The first flight of a TLS client for ``server_name`` (its ClientHello record)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def test_an_owner_connection_that_stops_reading_is_cut_at_a_byte_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """snitun has no flow control: a gateway sends as fast as its tunnel goes, whatever the
    owner reads. The relay holds at most ``OWNER_BACKLOG`` bytes for a connection (here 1 MiB,
    to keep the test short), then aborts it and closes its channel, so the gateway stops."""
    monkeypatch.setattr(sni_channel, "OWNER_BACKLOG", 1 << 20)
    home = Gateway("gw-home", SigningKey.generate())
    server, url = await start_remote_relay(tmp_path, {"home": home})
    assert server.relay.front is not None
    sent = 0
    stopped = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        block = b"x" * 65536
        try:
            while sent < 1 << 30:
                writer.write(block)
                await writer.drain()
                sent += len(block)
        except ConnectionError:
            pass
        finally:
            stopped.set()
            writer.close()

    endpoint = await asyncio.start_server(flood, "127.0.0.1", 0)
    tunnel = home.tunnel(url, "home", int(endpoint.sockets[0].getsockname()[1]))
    try:
        await tunnel.start()
        await asyncio.wait_for(tunnel.up.wait(), WAIT_S)
        # The owner sends its ClientHello and then reads nothing.
        _, writer = await asyncio.open_connection("127.0.0.1", server.relay.front.port)
        writer.write(_client_hello(HOME))
        await writer.drain()
        await asyncio.wait_for(stopped.wait(), WAIT_S)
        # The bound, the relay's and the gateway's socket buffers and what was in flight: far
        # from the gigabyte the gateway would have sent.
        assert sent < 64 << 20
        writer.close()
    finally:
        await tunnel.stop()
        await server.stop()
        endpoint.close()
