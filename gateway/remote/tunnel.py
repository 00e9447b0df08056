"""The gateway's outbound tunnel to the relay's SNI front (docs/remote.md), kept up like sync.

Theory of operation. The task asks the relay for a tunnel token for its own remote name (a
signed request, :mod:`gateway.remote.relay_api`), dials the relay's SNI front with snitun's
``ClientPeer`` and answers its AES challenge; from then on the relay opens one multiplexer
channel per browser connection for ``<name>.<domain>``, and snitun's ``Connector`` joins
each channel to the gateway's own TLS listener for that name (``endpoint``). The TLS
handshake and everything inside it happen between the browser and the gateway: the relay
and this task carry ciphertext.

When the tunnel cannot be opened or drops, the task waits (:func:`reconnect_delay`: doubling
with full jitter, capped, never below a minimum) and opens it again with a fresh token. The
keep-alive is snitun's fixed 50 s ping (:mod:`gateway.remote.schedule` has the rhythm).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

from snitun.client.client_peer import ClientPeer
from snitun.exceptions import MultiplexerTransportClose, MultiplexerTransportError, SniTunError
from snitun.multiplexer.channel import MultiplexerChannel
from snitun.multiplexer.core import Multiplexer

from gateway.remote.errors import RelayRefused, RemoteError
from gateway.remote.relay_api import RelayApi
from gateway.remote.schedule import (
    BACKOFF_CAP_S,
    MIN_RETRY_S,
    failures_after,
    reconnect_delay,
)
from groundwork.files import write_file

log = logging.getLogger("threshold.remote")
#: The tunnel's status beside the configuration, for ``threshold remote status``.
REMOTE_STATUS_FILE = "remote-status.json"


class TunnelState(enum.Enum):
    CONNECTING = "connecting"
    UP = "up"
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"


@dataclass
class TunnelStatus:
    """What ``threshold remote status`` shows (one owner: the task)."""

    state: TunnelState = TunnelState.CONNECTING
    host_name: str = ""
    since_s: float | None = None
    last_error: str | None = None
    openings: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "host_name": self.host_name,
            "since_s": self.since_s,
            "last_error": self.last_error,
            "openings": self.openings,
        }


#: Bytes read from the gateway's listener per multiplexer message, and the reader's buffer
#: limit so that a read can find that many waiting. snitun's own Connector reads 4 KiB; the
#: relay's cost is per message (bench/remote.py, docs/remote.md "Figures"): 64 KiB messages
#: cost the relay 2.5 CPU-s per GB, 256 KiB ones about half as much. A live view's frame is
#: one message whatever this is (it is read as it is written); only a transfer that outruns
#: the tunnel fills a message.
ENDPOINT_READ = 256 * 1024


class TunnelEndpoint:
    """Joins each channel the relay opens to the gateway's TLS listener for the remote name:
    what snitun's ``Connector`` does, with larger reads (its ``handler`` is what
    ``ClientPeer`` calls for a new channel)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    async def handler(self, multiplexer: Multiplexer, channel: MultiplexerChannel) -> None:
        try:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, limit=ENDPOINT_READ
            )
        except OSError:
            log.warning("remote: the gateway's own listener refused a tunnel connection")
            with contextlib.suppress(MultiplexerTransportError):
                await multiplexer.delete_channel(channel)
            return

        async def to_relay() -> None:
            while data := await reader.read(ENDPOINT_READ):
                await channel.write(data)

        async def to_listener() -> None:
            while True:
                writer.write(await channel.read())
                await writer.drain()

        pumps = [asyncio.create_task(to_relay()), asyncio.create_task(to_listener())]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None and not isinstance(
                    error, MultiplexerTransportClose | MultiplexerTransportError | OSError
                ):
                    raise error
            # The listener closed (or the channel failed): tell the relay, unless the relay
            # closed the channel itself.
            if not any(isinstance(t.exception(), MultiplexerTransportClose) for t in done):
                with contextlib.suppress(MultiplexerTransportError):
                    await multiplexer.delete_channel(channel)
        finally:
            for task in pumps:
                task.cancel()
            for task in pumps:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            writer.close()


class RemoteTunnel:
    """The supervised tunnel: ``start()``, ``stop()``; ``status`` and ``up`` for watchers."""

    def __init__(
        self,
        api: RelayApi,
        name: str,
        endpoint: tuple[str, int],
        *,
        backoff_cap_s: float = BACKOFF_CAP_S,
        min_retry_s: float = MIN_RETRY_S,
        status_file: Path | None = None,
    ) -> None:
        self._api = api
        self._name = name
        self._endpoint = endpoint
        self._cap = backoff_cap_s
        self._minimum = min_retry_s
        self._status_file = status_file
        self._task: asyncio.Task[None] | None = None
        self._peer: ClientPeer | None = None
        self.status = TunnelStatus()
        #: Set while the tunnel is up; cleared when it drops.
        self.up = asyncio.Event()
        #: Set each time an attempt ends (failed or dropped): tests synchronise on it.
        self.down = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="remote-tunnel")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_peer()
        await self._api.close()
        self.up.clear()
        self.status.state = TunnelState.STOPPED
        self._save_status()

    def _save_status(self) -> None:
        """The status for ``threshold remote status`` (no secret in it)."""
        if self._status_file is None:
            return
        with contextlib.suppress(OSError):
            write_file(self._status_file, json.dumps(self.status.to_json()).encode(), replace=True)

    async def _close_peer(self) -> None:
        peer, self._peer = self._peer, None
        if peer is not None and peer.is_connected:
            with contextlib.suppress(SniTunError, RuntimeError, OSError):
                await asyncio.wait_for(peer.stop(), 5)

    async def _supervise(self) -> None:
        failures = 0
        while True:
            self.status.state = TunnelState.CONNECTING
            up_s: float | None = None
            try:
                up_s = await self._run_once()
                self.status.last_error = "the relay closed the tunnel"
            except asyncio.CancelledError:
                raise
            except RelayRefused as exc:
                self.status.last_error = exc.message
                log.warning("remote tunnel refused by the relay: %s", exc.message)
            except (RemoteError, SniTunError, OSError, TimeoutError, RuntimeError) as exc:
                # RuntimeError: snitun's peer had already dropped when asked to wait.
                message = getattr(exc, "message", None) or type(exc).__name__
                self.status.last_error = str(message)[:300]
                log.info("remote tunnel down: %s", self.status.last_error)
            finally:
                self.up.clear()
                await self._close_peer()
            self.down.set()
            self._save_status()
            failures = failures_after(failures, up_s)
            delay = reconnect_delay(
                failures, cap_s=self._cap, minimum_s=self._minimum, jitter=random.random
            )
            self.status.state = TunnelState.BACKING_OFF
            await asyncio.sleep(delay)

    async def _run_once(self) -> float:
        """Open the tunnel and hold it until it drops; how long it was up."""
        grant = await self._api.tunnel_grant(self._name)
        self.status.host_name = grant.host_name
        host, port = self._endpoint
        connector = TunnelEndpoint(host, port)
        peer = ClientPeer(self._api.access.host, grant.port)
        self._peer = peer
        await peer.start(connector, grant.token, grant.aes_key, grant.aes_iv)
        started = time.monotonic()
        self.status.state = TunnelState.UP
        self.status.since_s = time.time()
        self.status.openings += 1
        self.down.clear()
        self.up.set()
        self._save_status()
        log.info("remote tunnel up for %s", grant.host_name)
        await peer.wait()
        return time.monotonic() - started
