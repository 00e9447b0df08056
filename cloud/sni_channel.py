"""One owner's connection carried over a gateway's snitun multiplexer channel, at the relay
(docs/remote.md, Figures).

What snitun's ``SNIProxy`` does once it has found the peer, through the multiplexer's public
channel API (``create_channel``, ``MultiplexerChannel.read``/``write``, ``delete_channel``),
with the same outcomes: the ClientHello goes first, bytes go both ways undecrypted, a channel
the gateway closes closes the connection, a connection that closes (or fails) closes the
channel, and a connection silent both ways for :data:`IDLE_S` is closed along with its
channel. It differs in cost: ``SNIProxy`` starts a task, an ``asyncio.wait`` and a timer for
every message it carries; here each direction is one task for the connection's life, and the
idle timer is one timer handle that is moved only when it fires. And in what it holds for an
owner that reads slower than its gateway sends: ``SNIProxy`` awaits each write's drain, so the
backlog waits in the channel's queue (up to 8000 messages); here it waits in the transport's
buffer, counted in bytes, and past :data:`OWNER_BACKLOG` the connection is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging

from snitun.exceptions import MultiplexerTransportClose, MultiplexerTransportError
from snitun.multiplexer.channel import MultiplexerChannel
from snitun.multiplexer.core import Multiplexer

log = logging.getLogger("threshold.relay.sni")

#: A connection silent both ways this long is closed (snitun's ``TCP_SESSION_TIMEOUT``).
IDLE_S = 60.0
#: Bytes read from the owner's connection per multiplexer message: snitun's 4 KiB, which
#: bounds what owners can make the relay queue for a gateway whose tunnel is slow (snitun's
#: tunnel queue holds 12000 messages: 48 MB). The bulk of a live view goes the other way.
OWNER_READ = 4096
#: Bytes the relay holds for an owner's connection that reads slower than its gateway sends
#: (snitun has no flow control): past this the connection is aborted and its channel closed,
#: as snitun drops a channel whose queue is full (8000 messages: 8000 x the message size).
OWNER_BACKLOG = 16 * 1024 * 1024


async def carry(
    multiplexer: Multiplexer,
    client_hello: bytes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Carry one owner's connection until either side closes it or it stays silent for
    :data:`IDLE_S`; the connection is closed when this returns."""
    try:
        try:
            address = ipaddress.ip_address(writer.get_extra_info("peername")[0])
        except (TypeError, ValueError, IndexError):
            return
        try:
            channel = await multiplexer.create_channel(address)
        except MultiplexerTransportError:
            log.warning("the gateway's tunnel refused a new channel")
            return
        await _pump(multiplexer, channel, client_hello, reader, writer)
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close the owner's connection once what it was sent has (mostly) left; an owner that
    does not read it within :data:`IDLE_S` has its connection aborted, so that the relay does
    not hold what it was sent."""
    transport = writer.transport
    try:
        if transport.get_write_buffer_size() and not transport.is_closing():
            async with asyncio.timeout(IDLE_S):
                await writer.drain()
    except (TimeoutError, OSError):
        transport.abort()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


async def _pump(
    multiplexer: Multiplexer,
    channel: MultiplexerChannel,
    client_hello: bytes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    loop = asyncio.get_running_loop()
    last = [loop.time()]

    async def to_gateway() -> None:
        data = client_hello
        while data:
            await channel.write(data)
            last[0] = loop.time()
            data = await reader.read(OWNER_READ)
        # The owner closed: the channel goes with it (below).

    async def to_owner() -> None:
        # No drain: the backlog waits in the transport's buffer, where it is counted in bytes,
        # rather than in the channel's queue, where it is counted in messages.
        transport = writer.transport
        while not transport.is_closing():
            writer.write(await channel.read())
            last[0] = loop.time()
            if transport.get_write_buffer_size() > OWNER_BACKLOG:
                log.info("aborted an owner's connection that fell %d bytes behind", OWNER_BACKLOG)
                transport.abort()
                return

    pumps = [asyncio.create_task(to_gateway()), asyncio.create_task(to_owner())]
    idle = asyncio.Event()
    # One timer for the connection's life: the pumps only note when they last carried
    # something, and the timer moves itself on when it fires.
    timer: list[asyncio.TimerHandle] = []

    def watch() -> None:
        deadline = last[0] + IDLE_S
        if deadline <= loop.time():
            idle.set()
            for task in pumps:
                task.cancel()
        else:
            timer[:] = [loop.call_at(deadline, watch)]

    timer.append(loop.call_at(last[0] + IDLE_S, watch))
    try:
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        errors = [task.exception() for task in done if not task.cancelled()]
        for error in errors:
            if error is not None and not isinstance(
                error, MultiplexerTransportClose | MultiplexerTransportError | OSError
            ):
                raise error
        # Unless the gateway closed the channel itself, tell it the connection is gone.
        if idle.is_set() or not any(isinstance(e, MultiplexerTransportClose) for e in errors):
            with contextlib.suppress(MultiplexerTransportError):
                await multiplexer.delete_channel(channel)
    finally:
        timer[0].cancel()
        for task in pumps:
            task.cancel()
        for task in pumps:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
