"""The relay's SNI front: TLS connections for ``<name>.<domain>`` spliced, undecrypted, to
that gateway's outbound tunnel (docs/remote.md).

Built on Nabu Casa's snitun (the SNI proxy and TCP multiplexer Home Assistant's cloud runs):
one listening port carries both kinds of connection, told apart by their first byte:

* ``0x16`` (a TLS handshake record, RFC 8446 §5.1): an owner's browser. The front reads the
  whole first record (the ClientHello), takes its server name (RFC 6066 §3), refuses any name
  the relay does not route (the connection is closed; nothing is answered), opens a channel
  on the named gateway's snitun multiplexer and copies bytes both ways
  (:mod:`cloud.sni_channel`: what snitun's ``SNIProxy`` does, at a fraction of its cost per
  message). The front never holds a key for the owner's TLS: the handshake ends in the
  gateway.
* ``g`` (a Fernet token, base64 of version byte 0x80): a gateway's tunnel. snitun's
  ``PeerListener`` decrypts the token with the relay's tunnel key (``DIR/remote.key``, 0600),
  runs its AES challenge with the key the token carries, and registers the peer under the
  token's host name. Only the relay issues tokens (:meth:`SniFront.issue`), and only to the
  gateway the name is assigned to (the signed ``POST /v1/gateways/{id}/tunnel``).

A token is good for :data:`TOKEN_TTL_S` to start a tunnel; snitun's listener checks every
four hours whether the token of a running tunnel has expired and closes it if so, after which
the gateway asks for a new one (a fixed rhythm, whatever the traffic).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from snitun.exceptions import ParseSNIError
from snitun.server.listener_peer import PeerListener
from snitun.server.peer_manager import PeerManager
from snitun.server.sni import parse_tls_sni
from snitun.utils.aes import generate_aes_keyset
from snitun.utils.server import generate_client_token

from cloud.errors import CloudError
from cloud.remote_names import NameTable
from cloud.sni_channel import carry
from groundwork.files import write_file

log = logging.getLogger("threshold.relay.sni")

TUNNEL_KEY_FILE = "remote.key"
TOKEN_TTL_S = 300
#: How long a new connection may take to show what it is (a ClientHello, or a token).
FIRST_BYTES_S = 10.0
#: A ClientHello is one TLS record: at most 2^14 bytes of payload (RFC 8446 §5.1).
MAX_RECORD = 5 + 2**14
TLS_HANDSHAKE = 0x16
#: A Fernet token's base64 starts with "g" (its version byte, 0x80).
TUNNEL_TOKEN = b"g"


@dataclass(frozen=True, slots=True)
class TunnelGrant:
    """What a gateway needs to open its tunnel: snitun's token, and the AES key and IV of its
    challenge and multiplexer (sent over the relay's HTTPS, in the answer to the gateway's
    signed request)."""

    host_name: str
    token: bytes
    aes_key: bytes
    aes_iv: bytes
    valid_s: int


def load_or_create_tunnel_key(directory: Path) -> str:
    """The relay's Fernet key for tunnel tokens (``DIR/remote.key``, 0600), made on first use;
    every relay process of one directory shares it."""
    path = directory / TUNNEL_KEY_FILE
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            write_file(path, Fernet.generate_key() + b"\n")
    key = path.read_text("ascii").strip()
    try:
        if len(base64.urlsafe_b64decode(key)) != 32:
            raise ValueError
    except ValueError:
        raise CloudError(f"{path} does not hold a Fernet key") from None
    return key


class SniFront:
    """The SNI front on one listening port: :meth:`start`, :meth:`stop`, :meth:`issue`."""

    def __init__(self, names: NameTable, tunnel_key: str) -> None:
        self.names = names
        self._key = tunnel_key
        self._peers = PeerManager([tunnel_key])
        self._tunnels = PeerListener(self._peers)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    def issue(self, host_name: str) -> TunnelGrant:
        """A fresh token for ``host_name`` (the caller checked the name is the gateway's)."""
        aes_key, aes_iv = generate_aes_keyset()
        token = generate_client_token(
            [self._key], timedelta(seconds=TOKEN_TTL_S), host_name, aes_key, aes_iv
        )
        return TunnelGrant(host_name, token, aes_key, aes_iv, TOKEN_TTL_S)

    def drop(self, host_name: str) -> bool:
        """Close the tunnel of ``host_name`` (an operator's cut; the gateway reconnects with a
        new token). Whether there was one."""
        peer = self._peers.get_peer(host_name)
        if peer is None or peer.multiplexer is None:
            return False
        peer.multiplexer.shutdown()
        return True

    def connected(self, host_name: str) -> bool:
        """Whether the gateway for ``host_name`` has a tunnel up."""
        return bool(self._peers.peer_available(host_name))

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None
    ) -> int:
        if sock is not None:
            self._server = await asyncio.start_server(self._accept, sock=sock)
        else:
            self._server = await asyncio.start_server(self._accept, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Tunnels first: a gateway sees its tunnel close and starts reconnecting.
        await self._peers.close_connections(timeout=5)
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._dispatch(reader, writer))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _dispatch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(FIRST_BYTES_S):
                first = await reader.readexactly(1)
                if first[0] == TLS_HANDSHAKE:
                    header = first + await reader.readexactly(4)
                    length = int.from_bytes(header[3:5], "big")
                    if length > MAX_RECORD - 5:
                        raise ParseSNIError
                    hello = header + await reader.readexactly(length)
                    server_name = parse_tls_sni(hello).lower()
                    token = b""
                elif first == TUNNEL_TOKEN:
                    token = first + await reader.read(2048)
                else:
                    raise ParseSNIError  # neither a TLS handshake nor a tunnel token
        except (TimeoutError, asyncio.IncompleteReadError, ParseSNIError, OSError):
            self._close(writer)
            return
        if token:
            await self._tunnels.handle_connection(reader, writer, data=token)
            return
        peer = self._peers.get_peer(server_name) if self.names.routes(server_name) else None
        if peer is None or not peer.is_ready or peer.multiplexer is None:
            # Nothing is answered for a name the relay does not route, or whose gateway has
            # no tunnel up: the browser sees the connection closed.
            log.debug("refused a connection for an unrouted or absent name")
            self._close(writer)
            return
        await carry(peer.multiplexer, hello, reader, writer)

    @staticmethod
    def _close(writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            writer.close()
