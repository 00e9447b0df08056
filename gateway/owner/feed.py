"""The owner's notifier and the app's live feed.

:class:`OwnerNotifier` is one of the access service's observers (the seam of
:mod:`gateway.access.observer`, beside the metrics, the log and Home Assistant's bridge): it
turns each access event, every :class:`~gateway.access.observer.OwnerNotification` first,
into a :class:`~gateway.owner.notices.Notice` and hands it to every :class:`Notifier` in its
list (the app's :class:`LiveFeed` now; Web Push adds its own with :meth:`OwnerNotifier.add`).

:class:`LiveFeed` keeps one bounded queue per open stream (Server-Sent Events): ``notify`` is
called on the access path and never waits; a stream that cannot keep up loses notices
(counted) rather than slowing the door. It keeps the last notices, so a browser that
reconnects with ``Last-Event-ID`` misses nothing recent, and it ends a revoked device's
streams at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from gateway.access.observer import AccessEvent
from gateway.owner.notices import Notice, notice_for

log = logging.getLogger("threshold.owner")

STREAM_QUEUE = 64
KEEP_RECENT = 100


class Notifier(Protocol):
    def notify(self, notice: Notice) -> None:
        """Take ``notice``; return at once (hand slow work to a task), never raise."""


class OwnerNotifier:
    """The access observer that tells every notifier (see the module docstring)."""

    def __init__(
        self,
        notifiers: Iterable[Notifier] = (),
        *,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.notifiers: list[Notifier] = list(notifiers)
        self._clock_ms = clock_ms

    def add(self, notifier: Notifier) -> None:
        self.notifiers.append(notifier)

    def observe(self, event: AccessEvent) -> None:
        """:class:`~gateway.access.observer.AccessObserver`: returns at once, never raises."""
        notice = notice_for(event, self._clock_ms())
        if notice is None:
            return
        for notifier in self.notifiers:
            try:
                notifier.notify(notice)
            except Exception:
                # A notifier is a bystander: its failure never touches the door or the others.
                log.exception("notifier %s failed", type(notifier).__name__)


@dataclass(frozen=True, slots=True)
class FeedItem:
    seq: int
    notice: Notice
    #: ``time.perf_counter()`` when the notice was handed to the feed.
    queued_at: float = 0.0


class Subscription:
    """One open stream: the recent notices it asked for, then live ones (see LiveFeed)."""

    def __init__(self, feed: LiveFeed, device_id: str, backlog: list[FeedItem]) -> None:
        self.device_id = device_id
        self.backlog = backlog
        self.queue: asyncio.Queue[FeedItem | None] = asyncio.Queue(STREAM_QUEUE)
        self.dropped = 0
        self.ended = False
        self._feed = feed

    async def next(self, timeout_s: float) -> FeedItem | None:
        """The next notice; None once the stream was ended; TimeoutError after ``timeout_s``."""
        if self.backlog:
            return self.backlog.pop(0)
        if self.ended:
            return None
        # Cancelling a queue's get loses nothing, so a heartbeat timeout is safe here.
        return await asyncio.wait_for(self.queue.get(), timeout_s)

    def end(self) -> None:
        self.ended = True
        # Whatever it had not read yet is for a device that may no longer see it.
        self.backlog.clear()
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    def close(self) -> None:
        self._feed.unsubscribe(self)


class LiveFeed:
    """Notices to every open app stream (see the module docstring)."""

    def __init__(self, delivered: Callable[[float], None] = lambda seconds: None) -> None:
        #: Told the seconds from a notice reaching the feed to its being written to an open
        #: stream (the gateway's metrics: notifier="app"); returns at once, never raises.
        self.delivered = delivered
        self._streams: set[Subscription] = set()
        self._recent: collections.deque[FeedItem] = collections.deque(maxlen=KEEP_RECENT)
        self._seq = 0

    @property
    def streams(self) -> int:
        return len(self._streams)

    @property
    def last_seq(self) -> int:
        return self._seq

    def notify(self, notice: Notice) -> None:
        self._seq += 1
        item = FeedItem(self._seq, notice, time.perf_counter())
        self._recent.append(item)
        for stream in self._streams:
            try:
                stream.queue.put_nowait(item)
            except asyncio.QueueFull:
                stream.dropped += 1

    def subscribe(self, device_id: str, after: int) -> Subscription:
        """A stream of the notices after ``after`` (the recent ones kept), then live ones."""
        backlog = [item for item in self._recent if item.seq > after]
        stream = Subscription(self, device_id, backlog)
        self._streams.add(stream)
        return stream

    def unsubscribe(self, stream: Subscription) -> None:
        self._streams.discard(stream)

    def end_device(self, device_id: str) -> int:
        """End every stream of ``device_id`` (revoked, signed out); return how many."""
        ended = [s for s in self._streams if s.device_id == device_id]
        for stream in ended:
            stream.end()
            self._streams.discard(stream)
        return len(ended)

    def end_all(self) -> None:
        """End every stream (the gateway is stopping)."""
        for stream in list(self._streams):
            stream.end()
        self._streams.clear()
