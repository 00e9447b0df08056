"""The LAN API's listening socket: who may hold a connection, and for how long (docs/api.md).

aiohttp's own site accepts every connection the kernel hands it, starts TLS on it at once and
keeps it while the client likes; 1,100 idle sockets then exhausted the common 1,024 open-file
limit and nobody else got in, and each cost about 300 KB (issue 11 #18). This module owns the
accept loop instead and bounds what connections may cost:

* at most :attr:`ConnectionLimits.per_address` connections from one address, and
  :attr:`~ConnectionLimits.total` in all (far below the open-file limit), the last
  :attr:`~ConnectionLimits.reserve` of them kept for the owner and for sessions in progress
  (a connection earns that once it carried a verified owner request, or a request about a
  session whose secret id it knew);
* when the rest is full, a newcomer takes the place of the oldest connection that is not
  being served (idle, handshaking, or still sending its request): an attacker's idle or
  trickling sockets cannot keep a courier out, they can only keep each other out;
* TLS starts only once the client has sent something (an idle socket costs no TLS buffers),
  and must complete within :attr:`~ConnectionLimits.handshake_s`; a request head must
  complete within :attr:`~ConnectionLimits.head_s` of its first byte; an idle keep-alive
  connection is closed after :attr:`~ConnectionLimits.idle_s`; a body must arrive within
  :attr:`~ConnectionLimits.body_s` (applied by the body middleware, before admission).

Memory: asyncio gives each TLS connection a 256 KiB read buffer. glibc's malloc serves blocks
that large with mmap (returned to the system on free) only until the first is freed; it then
raises its threshold and serves them from the heap, where freed memory stays with the process
(the "not returned after the connections close" of the issue). :func:`return_freed_buffers`
pins the threshold so that they stay mmapped, and the heap is trimmed when a crowd of
connections has gone; on another C library both are skipped.

Errors aiohttp raises before any route is found (a NUL in a header, a malformed request line,
a header over 8,190 bytes) are answered by :meth:`GuardedHandler.handle_error`. aiohttp has no
documented hook for them: :class:`aiohttp.web.RequestHandler` is exported, but neither its
constructor nor ``handle_error`` is in aiohttp's documentation, so this subclass relies on an
undocumented (if long-stable) method; the integration tests pin the behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import enum
import errno
import gc
import logging
import socket
import ssl
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

from gateway.api.problems import problem_response

log = logging.getLogger("threshold.api")

MAX_LINE = 8190  # request line and each header, as aiohttp's default
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_MMAP_THRESHOLD = 128 * 1024  # glibc's default, pinned
_TRIM_AFTER = 64  # connections gone since the last trim
_TRIM_DELAY_S = 1.0
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close with a reset, no TIME_WAIT
_OUT_OF_FILES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    #: All connections at once, well under the common 1,024 open-file limit (the store, the
    #: Bluetooth link and the camera need their own).
    total: int = 256
    #: Of ``total``, kept for connections that carried an owner request or a session's own.
    reserve: int = 32
    #: From one address (a phone needs a few; a browser up to 6).
    per_address: int = 16
    handshake_s: float = 5.0
    head_s: float = 5.0
    idle_s: float = 15.0
    body_s: float = 5.0
    #: The kernel's queue of completed handshakes not yet accepted. A flood of connections
    #: overflowed 128 (Linux then drops new SYNs too), and a courier's connection made just
    #: after it waited a second for its SYN to be sent again; the accept loop drains the
    #: queue each turn and evicts, so a deep queue costs kernel memory only, no descriptors.
    backlog: int = 1024


class Phase(enum.Enum):
    CONNECTING = "connecting"  # accepted; TLS not yet complete
    WAITING = "waiting"  # between requests (keep-alive)
    HEAD = "head"  # a request head is arriving
    BODY = "body"  # routed; its body is being read
    SERVED = "served"  # admitted: a handler is working on it


class Connection:
    """One accepted socket, from accept to close. Owned by the :class:`Listener`."""

    def __init__(self, listener: Listener, sock: socket.socket, peer: str) -> None:
        self.listener = listener
        self.sock = sock
        self.peer = peer
        self.phase = Phase.CONNECTING
        self.privileged = False
        self.transport: asyncio.BaseTransport | None = None
        self.task: asyncio.Task[None] | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def evictable(self) -> bool:
        return not self.privileged and self.phase is not Phase.SERVED

    def _deadline(self, seconds: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if seconds is not None:
            self._timer = asyncio.get_running_loop().call_later(seconds, self.close)

    def close(self) -> None:
        """Drop the connection now (a deadline passed, or its place is needed)."""
        self._deadline(None)
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()
        elif self.transport is not None:
            self.transport.close()
        else:
            # Still connecting (waiting for the client, or mid-handshake, when asyncio's
            # transport owns the descriptor): end the TCP connection at once and let whoever
            # owns the descriptor close it. A graceful TLS close would wait on the client.
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                self.sock.shutdown(socket.SHUT_RDWR)
            if self.task is not None:
                self.task.cancel()

    # -- what the protocol and the middlewares report ------------------------------------------

    def connected(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.phase = Phase.WAITING
        self._deadline(self.listener.limits.idle_s)

    def received(self) -> None:
        if self.phase is Phase.WAITING:
            self.phase = Phase.HEAD
            self._deadline(self.listener.limits.head_s)

    def routed(self) -> None:
        self.phase = Phase.BODY
        self._deadline(None)  # the body has its own deadline, in the body middleware

    def admitted(self) -> None:
        self.phase = Phase.SERVED

    def answered(self) -> None:
        self.phase = Phase.WAITING
        self._deadline(self.listener.limits.idle_s)

    def privilege(self) -> None:
        """This connection serves the owner or a session in progress: keep it in the reserve."""
        self.listener.privilege(self)

    def disconnected(self) -> None:
        self._deadline(None)
        if not self.lost.done():
            self.lost.set_result(None)


class GuardedHandler(web.RequestHandler):
    """aiohttp's protocol, reporting to its :class:`Connection`; pre-routing errors answered
    as problem+json (see the module docstring)."""

    def __init__(self, manager: web.Server, connection: Connection, **kwargs: Any) -> None:
        super().__init__(manager, loop=asyncio.get_running_loop(), **kwargs)
        self.connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.connection.connected(transport)

    def data_received(self, data: bytes) -> None:
        self.connection.received()
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self.connection.disconnected()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own answer is text/plain and quotes the parser's message, which carries
        # the client's bytes; this one names the class of error only.
        log.debug("refused a malformed request from %s (%s)", self.connection.peer, status)
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already started")
        if status == 400:
            resp = problem_response(400, "bad_request", "malformed HTTP request")
        elif status == 413 or status == 431:
            resp = problem_response(status, "headers_too_large", "request head too large")
        else:
            resp = problem_response(500, "internal_error", "the gateway hit an internal error")
        resp.force_close()
        return resp


def connection_of(request: web.Request) -> Connection | None:
    protocol = request.protocol
    return protocol.connection if isinstance(protocol, GuardedHandler) else None


class Listener:
    """Accepts connections for one aiohttp app under :class:`ConnectionLimits`."""

    def __init__(
        self,
        runner: web.AppRunner,
        limits: ConnectionLimits,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.runner = runner
        self.limits = limits
        self._ssl = ssl_context
        self._socks: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._connections: dict[Connection, None] = {}  # in accept order: oldest first
        self._per_peer: Counter[str] = Counter()
        self._privileged = 0
        self._freed = asyncio.Event()
        self._gone = 0
        self._trim: asyncio.TimerHandle | None = None
        self.refused = 0

    @property
    def port(self) -> int:
        return int(self._socks[0].getsockname()[1])

    def __len__(self) -> int:
        return len(self._connections)

    async def start(self, host: str, port: int) -> None:
        """Listen on every address ``host`` names (raises OSError if one cannot be bound)."""
        return_freed_buffers()
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        try:
            for family, kind, proto, _, address in infos:
                sock = socket.socket(family, kind, proto)
                self._socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                # Port 0 picks a free port once; every address then shares it.
                sock.bind((address[0], self.port if len(self._socks) > 1 else address[1]))
                sock.listen(self.limits.backlog)
                sock.setblocking(False)
        except OSError:
            for sock in self._socks:
                sock.close()
            self._socks.clear()
            raise
        self._accepting = [
            asyncio.create_task(self._accept_loop(sock), name="api accept") for sock in self._socks
        ]

    async def stop(self) -> None:
        for task in self._accepting:
            task.cancel()
        for task in self._accepting:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sock in self._socks:
            sock.close()
        if self._trim is not None:
            self._trim.cancel()
        for conn in list(self._connections):
            if conn.transport is None:
                conn.close()
        tasks = [c.task for c in self._connections if c.task is not None]
        await self.runner.cleanup()  # ends the connections aiohttp serves, gracefully
        for conn in list(self._connections):
            conn.close()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    # -- accepting ---------------------------------------------------------------------------

    async def _accept_loop(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, address = await loop.sock_accept(listening)
            except OSError as exc:
                if exc.errno in _OUT_OF_FILES:
                    # Out of descriptors all the same (other parts of the process): wait for
                    # one of ours to close rather than spin.
                    log.error("api: cannot accept (%s); waiting for a connection to close", exc)
                    self._freed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await self._freed.wait()
                continue
            self._admit(sock, str(address[0]))
            # Take what else the backlog holds now, in one turn of the loop.
            for _ in range(self.limits.backlog):
                try:
                    sock, address = listening.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # the next sock_accept reports it
                self._admit(sock, str(address[0]))

    def _admit(self, sock: socket.socket, peer: str) -> None:
        limits = self.limits
        if self._per_peer[peer] >= limits.per_address or not self._make_room():
            self.refused += 1
            _refuse(sock)
            return
        sock.setblocking(False)
        conn = Connection(self, sock, peer)
        self._connections[conn] = None
        self._per_peer[peer] += 1
        conn.task = asyncio.create_task(self._serve(conn), name=f"api connection {peer}")

    def _make_room(self) -> bool:
        general = len(self._connections) - self._privileged
        if general < self.limits.total - self.limits.reserve:
            return True
        for conn in self._connections:
            if conn.evictable:
                conn.close()
                self._forget(conn)  # its place is taken now, whenever its task ends
                return True
        return False

    def privilege(self, conn: Connection) -> None:
        if conn.privileged or conn not in self._connections:
            return
        if self._privileged < self.limits.reserve:
            conn.privileged = True
            self._privileged += 1

    def _forget(self, conn: Connection) -> None:
        if conn not in self._connections:
            return  # evicted already
        del self._connections[conn]
        self._per_peer[conn.peer] -= 1
        if self._per_peer[conn.peer] <= 0:
            del self._per_peer[conn.peer]
        if conn.privileged:
            self._privileged -= 1
        self._freed.set()
        self._gone += 1
        if self._gone >= _TRIM_AFTER and len(self._connections) <= self.limits.reserve:
            # A crowd came and went (a flood, or a burst of phones): give its memory back,
            # once the cycles its transports left behind are collected.
            self._gone = 0
            if self._trim is None or self._trim.cancelled():
                self._trim = asyncio.get_running_loop().call_later(_TRIM_DELAY_S, self._trim_now)

    def _trim_now(self) -> None:
        self._trim = None
        gc.collect()
        _trim_heap()

    async def _serve(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        limits = self.limits
        server = self.runner.server
        assert server is not None, "start() after runner.setup()"
        conn._deadline(limits.handshake_s)
        handed_over = False  # once asyncio's transport owns the descriptor, it closes it
        try:
            if self._ssl is not None:
                await _readable(loop, conn.sock)
                if conn.sock.recv(1, socket.MSG_PEEK) == b"":
                    return  # gone before saying anything: no TLS for it
            handed_over = True
            await loop.connect_accepted_socket(
                lambda: GuardedHandler(
                    server,
                    conn,
                    keepalive_timeout=limits.idle_s,
                    max_line_size=MAX_LINE,
                    max_field_size=MAX_LINE,
                    access_log=None,
                ),
                conn.sock,
                ssl=self._ssl,
                ssl_handshake_timeout=limits.handshake_s if self._ssl is not None else None,
                ssl_shutdown_timeout=1.0 if self._ssl is not None else None,
            )
            await conn.lost
        except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError):
            pass  # the client went away, failed TLS, or ran out of time
        finally:
            conn.disconnected()
            if not handed_over:
                conn.sock.close()
            self._forget(conn)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: the attribute lookup is the test)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def return_freed_buffers() -> None:
    """Keep connection buffers mmapped, so that freeing them returns them (glibc only)."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def _trim_heap() -> None:
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _refuse(sock: socket.socket) -> None:
    # A reset, not a graceful close: no TIME_WAIT, no lingering buffers.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    sock.close()


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
