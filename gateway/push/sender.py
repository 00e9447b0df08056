"""The Web Push sender: a notifier that never blocks the door, and its sending task.

:class:`PushSender` is one of the owner notifier's notifiers
(:class:`~gateway.owner.feed.OwnerNotifier`): ``notify`` is called on the access path, keeps
only the notices that interrupt the owner (``alert``) and puts them in a bounded queue,
dropping the oldest when it is full (counted), like the MQTT bridge. Its task reads the
subscribed devices from the store, and for each device that wants this kind of notice:

* drops it when it is older than the window (``[push] ttl_s``): with the internet down,
  nothing is sent late, and the app's feed and history show what happened on reconnection;
* pads it to the one size (:mod:`gateway.push.message`), encrypts it to the device (RFC 8291
  aes128gcm, by pywebpush on http-ece) and POSTs it with pywebpush's aiohttp sender
  (``WebPusher.send_async``) and the VAPID header (:mod:`gateway.push.vapid`), with a
  ``TTL`` of what is left of the window and ``Urgency: high`` (all alike);
* a push service that answers 404 or 410 has dropped the subscription: it is deleted; one
  that cannot be reached is tried again with backoff while the window lasts.

At most :data:`IN_FLIGHT` sends run at once, each bounded by :data:`SEND_TIMEOUT_S`: a push
service that hangs holds those slots, never the door.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from pywebpush import WebPusher

from gateway.owner.notices import Notice
from gateway.push.errors import PayloadTooLarge
from gateway.push.message import message_for, padded_payload, ttl_left
from gateway.push.settings import PushConfig
from gateway.push.vapid import VapidSigner
from gateway.trust.base64url import b64u_encode
from groundwork.backoff import doubling_delay
from store.db import Store
from store.push import PushSubscriptionRecord, PushTables

log = logging.getLogger("threshold.push")

QUEUE = 64
IN_FLIGHT = 16
SEND_TIMEOUT_S = 10.0
RETRY_INITIAL_S = 1.0
RETRY_CAP_S = 30.0
#: Every push is an alert that should wake the device (RFC 8030 §5.3), and one urgency for
#: all keeps the header from telling the push service an approval from a courier.
URGENCY = "high"


@dataclass(frozen=True, slots=True)
class _Queued:
    notice: Notice
    #: ``time.monotonic()`` when the notice reached the sender.
    at: float


@dataclass
class PushCounts:
    """What the sender did since start (the tests and the metrics read them)."""

    sent: int = 0
    #: Dropped: the queue was full (the oldest went), or the window had passed.
    dropped_full: int = 0
    dropped_stale: int = 0
    #: Not wanted by the device (its preferences).
    skipped: int = 0
    #: Subscriptions deleted on a 404 or 410.
    removed: int = 0
    failed: int = 0


def client_ssl(config: PushConfig) -> ssl.SSLContext:
    """The system's trust store, plus ``[push] ca_file`` when set."""
    context = ssl.create_default_context()
    if config.ca_file is not None:
        context.load_verify_locations(cafile=str(config.ca_file))
    return context


def audience(endpoint: str) -> str:
    """The push service's origin, the JWT's ``aud`` (RFC 8292 §2)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class PushSender:
    """See the module docstring."""

    def __init__(
        self,
        store: Store,
        signer: VapidSigner,
        config: PushConfig,
        *,
        ssl_context: ssl.SSLContext,
        delivered: Callable[[float], None] = lambda seconds: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.signer = signer
        self.config = config
        self.counts = PushCounts()
        #: Told the seconds from a notice reaching the sender to its push being accepted by
        #: the push service (the gateway's metrics: notifier="push").
        self.delivered = delivered
        self._ssl = ssl_context
        self._clock = clock
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue(QUEUE)
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._sends: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        #: Notified whenever a count changes (:meth:`settled`).
        self._changed = asyncio.Condition()
        self._session: aiohttp.ClientSession | None = None

    # -- the access path ----------------------------------------------------------------------

    def notify(self, notice: Notice) -> None:
        """A :class:`~gateway.owner.feed.Notifier`: returns at once, never waits."""
        if not notice.alert:
            return
        item = _Queued(notice, self._clock())
        if self._queue.full():
            self._queue.get_nowait()
            self.counts.dropped_full += 1
        self._queue.put_nowait(item)

    # -- the task -----------------------------------------------------------------------------

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=IN_FLIGHT)
        self._session = aiohttp.ClientSession(connector=connector)
        self._task = asyncio.create_task(self._run(), name="web push")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._sends) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                subscriptions = await self.store.read(lambda c: PushTables(c).active())
            except Exception:
                log.exception("push: cannot read the subscriptions")
                continue
            try:
                payload = padded_payload(message_for(item.notice))
            except PayloadTooLarge:
                log.exception("push: a %s notice does not fit", item.notice.kind.value)
                continue
            for subscription in subscriptions:
                if item.notice.kind.value not in subscription.kinds:
                    await self._count("skipped")
                    continue
                await self._slots.acquire()
                task = asyncio.create_task(self._deliver(subscription, payload, item))
                self._sends.add(task)
                task.add_done_callback(self._sent)

    async def settled(self, done: Callable[[PushCounts], bool], timeout_s: float) -> PushCounts:
        """Wait until ``done(counts)`` (the tests and the benchmark synchronise on it)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: done(self.counts))
        return self.counts

    async def _count(self, name: str) -> None:
        setattr(self.counts, name, getattr(self.counts, name) + 1)
        async with self._changed:
            self._changed.notify_all()

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        self._slots.release()

    async def _deliver(
        self, subscription: PushSubscriptionRecord, payload: bytes, item: _Queued
    ) -> None:
        try:
            await self._deliver_once(subscription, payload, item)
        except Exception:
            # A push is a bystander: whatever went wrong is logged and counted, never raised.
            log.exception("push: device %s: the push failed", subscription.device_id)
            await self._count("failed")

    async def _deliver_once(
        self, subscription: PushSubscriptionRecord, payload: bytes, item: _Queued
    ) -> None:
        attempt = 0
        while True:
            ttl = ttl_left(self._clock() - item.at, self.config.ttl_s)
            if ttl is None:
                await self._count("dropped_stale")
                log.info("push: a %s notice was dropped, past its window", item.notice.kind.value)
                return
            try:
                status = await self._post(subscription, payload, ttl)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                attempt += 1
                delay = doubling_delay(attempt, RETRY_INITIAL_S, RETRY_CAP_S)
                log.info("push: device %s unreachable (%s)", subscription.device_id, type(exc))
                # Never past the window: the check above then drops it on time.
                await asyncio.sleep(min(delay, ttl))
                continue
            break
        if status in (404, 410):
            endpoint = subscription.endpoint
            await self.store.transact(lambda tx: tx.push.remove_endpoint(endpoint))
            await self._count("removed")
            log.info("push: device %s's subscription is gone: removed", subscription.device_id)
        elif status >= 300:
            await self._count("failed")
            log.warning(
                "push: device %s's push service answered %d", subscription.device_id, status
            )
        else:
            await self._count("sent")
            self.delivered(self._clock() - item.at)

    async def _post(self, subscription: PushSubscriptionRecord, payload: bytes, ttl: int) -> int:
        assert self._session is not None
        if not subscription.endpoint.startswith("https://"):
            raise aiohttp.InvalidURL(subscription.endpoint)  # the schema allows only https
        info = {
            "endpoint": subscription.endpoint,
            "keys": {
                "p256dh": b64u_encode(subscription.p256dh),
                "auth": b64u_encode(subscription.auth),
            },
        }
        headers = {
            **self.signer.headers(audience(subscription.endpoint)),
            "Urgency": URGENCY,
        }
        pusher = WebPusher(info, aiohttp_session=self._session)
        response = await pusher.send_async(
            payload,
            headers,
            ttl=ttl,
            content_encoding="aes128gcm",
            timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S),
        )
        assert not isinstance(response, str)  # a curl rendering only when asked
        return int(response.status)
