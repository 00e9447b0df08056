"""A bounded, drop-when-full hand-off of packets from the reader thread to one consumer.

The reader thread must never wait for a consumer: a camera stream does not pause, and a
blocked demuxer would look exactly like a stalled camera. So :meth:`PacketSubscription.offer`
never blocks. When the consumer falls behind and the queue is full, the packet is dropped
and counted. Consumers read either from a thread (:meth:`get`) or from asyncio
(:meth:`next`); the asyncio side is woken with ``call_soon_threadsafe``, which does not block.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable

from video.packet import VideoPacket

DEFAULT_MAX_PACKETS = 600  # 40 s at 15 fps: only a consumer that is truly stuck loses data
# The reader hands packets over in small batches (video.source.reader_batch_size), so a packet
# reaches its subscribers at most about this long after it arrived, while the camera streams.
# When the camera stops, the packets of a partial batch follow once the read fails.
DELIVERY_LAG_S = 0.25


class PacketSubscription:
    """One consumer's queue of packets. Closing it (either side) ends the consumer's loop."""

    def __init__(
        self,
        max_packets: int = DEFAULT_MAX_PACKETS,
        loop: asyncio.AbstractEventLoop | None = None,
        on_close: Callable[[PacketSubscription], None] | None = None,
        wake_every: int = 1,
    ) -> None:
        if max_packets < 1:
            raise ValueError("max_packets must be >= 1")
        if not 1 <= wake_every <= max_packets:
            raise ValueError("wake_every must be between 1 and max_packets")
        self.max_packets = max_packets
        # A thread consumer that works in batches (the clip writer) is woken once per
        # wake_every packets, not per packet: each wake is a thread switch and a GIL hand-off
        # with the reader. It still gets every packet, on its own timeout or on wake().
        self.wake_every = wake_every
        # Each packet with whether packets were dropped just before it.
        self._items: deque[tuple[VideoPacket, bool]] = deque()
        self._gap = False
        self.last_gap = False
        """After get()/next(): True if packets were dropped right before the one returned."""
        self._cond = threading.Condition()
        self._closed = False
        self._dropped = 0
        self._loop = loop
        self._event = asyncio.Event() if loop is not None else None
        self._on_close = on_close

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, packet: VideoPacket) -> bool:
        """Queue a packet without ever blocking; False (and counted) if it was dropped.

        Called by one producer (the reader thread), for every packet. For a consumer thread
        it takes no lock unless it wakes the consumer: ``deque.append`` and ``len`` are atomic
        in CPython, the consumer only ever shortens the queue, and ``_gap``/``_dropped`` are
        the producer's. The consumer waits in :meth:`get` only after finding the queue empty
        under the condition's lock; from then on the queue only grows, so the length read
        after the append reaches ``wake_every`` and the wake (under that lock) is not lost.
        """
        if self._closed:
            return False
        if self._loop is not None:
            return self._offer_waking_loop(packet)
        items = self._items
        if len(items) >= self.max_packets:
            self._dropped += 1
            self._gap = True
            return False
        items.append((packet, self._gap))
        self._gap = False
        if len(items) >= self.wake_every:
            with self._cond:
                self._cond.notify()
        return True

    def _offer_waking_loop(self, packet: VideoPacket) -> bool:
        # An asyncio consumer is woken when the queue stops being empty, judged under the
        # lock its next() takes (rare consumers: live view, tests).
        with self._cond:
            if len(self._items) >= self.max_packets:
                self._dropped += 1
                self._gap = True
                return False
            was_empty = not self._items
            self._items.append((packet, self._gap))
            self._gap = False
            if len(self._items) >= self.wake_every:
                self._cond.notify()
        if was_empty:
            self._wake_async()
        return True

    def wake(self) -> None:
        """Wake a consumer blocked in :meth:`get` now (it has something else to look at)."""
        with self._cond:
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> VideoPacket | None:
        """Blocking read for a consumer thread: a packet, or None on timeout or close."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            return self._pop()

    async def next(self) -> VideoPacket | None:
        """Read from asyncio: the next packet, or None once the subscription is closed."""
        if self._event is None:
            raise RuntimeError("this subscription was made without an event loop")
        while True:
            with self._cond:
                if self._items:
                    return self._pop()
                if self._closed:
                    return None
                self._event.clear()
            await self._event.wait()

    def _pop(self) -> VideoPacket | None:
        if not self._items:
            return None
        packet, self.last_gap = self._items.popleft()
        return packet

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._wake_async()
        if self._on_close is not None:
            self._on_close(self)

    def _wake_async(self) -> None:
        if self._loop is None or self._event is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            with self._cond:
                self._closed = True
