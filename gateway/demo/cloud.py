"""The demo's cloud: the reference relay on loopback behind a link the demo can cut.

``threshold demo`` keeps the relay unreachable while the visits happen (the gateway decides
offline), then "the internet comes back": the link opens, the gateway's sync task catches up,
and the owner's reader prints the decrypted, verified history. The link is a plain TCP
forwarder on 127.0.0.1 that refuses connections while blocked, which is what a dead uplink
looks like to the gateway. With ``--dir DIR`` the relay keeps its data under ``DIR/cloud/``.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
from nacl.signing import SigningKey

from cloud.relay import Relay, RelayServer
from cloud.wire import unb64
from gateway.clients import cloud as cloud_client
from gateway.clients.owner_log import OwnerLog, verify_and_open
from gateway.trust.seal import Unsealer


class CuttableLink:
    """127.0.0.1:port -> the relay; refuses every connection while blocked."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.blocked = True
        self.port = 0
        self.captured = bytearray()  # what crossed the link, both ways

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        except OSError:
            writer.close()
            return
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink, self.captured))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, capture: bytearray
    ) -> None:
        try:
            while data := await source.read(65536):
                capture += data
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()


class DemoCloud:
    """The relay, registered for the demo's gateway, reachable through a cuttable link."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server: RelayServer | None = None
        self.link: CuttableLink | None = None

    @property
    def url(self) -> str:
        assert self.link is not None
        return f"http://127.0.0.1:{self.link.port}"

    async def start(self, gateway_id: str, gateway_public: bytes, owner_public: bytes) -> str:
        relay = Relay(self.directory)
        await relay.register_gateway(gateway_id, gateway_public, owner_public)
        self.server = RelayServer(relay)
        await self.server.start()
        self.link = CuttableLink(self.server.port)
        await self.link.start()
        return self.url

    @property
    def public_key(self) -> bytes:
        assert self.server is not None
        return self.server.relay.public_key

    def block(self) -> None:
        assert self.link is not None
        self.link.blocked = True

    def unblock(self) -> None:
        assert self.link is not None
        self.link.blocked = False

    async def held_size(self, gateway_id: str) -> int:
        assert self.server is not None
        return await self.server.relay.held(gateway_id)

    async def owner_log(self, owner: SigningKey, gateway_id: str) -> tuple[OwnerLog, list[str]]:
        """What ``threshold owner log`` shows: (the verified log, alarm lines)."""
        async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
            entries, document, alarms = await cloud_client.download_log(
                session, self.url, owner, gateway_id
            )
        log = verify_and_open(
            entries,
            cloud_client.witnessed_from(document),
            unb64(document.get("gateway_key"), "gateway key"),
            Unsealer(bytes(owner)),
            str(document.get("relay_id")),
            unb64(document.get("relay_key"), "relay key"),
        )
        return log, [f"ALARM {a['code']}: {a['detail']}" for a in alarms]

    async def stop(self) -> None:
        if self.link is not None:
            await self.link.stop()
            # Kept so anyone can grep what the relay was shown (docs/cloud.md).
            (self.directory / "wire-capture.bin").write_bytes(bytes(self.link.captured))
        if self.server is not None:
            await self.server.stop()
