"""Prometheus metrics: how the gateway is doing, for the operator (docs/operations.md).

Three sources, each read where it is owned:

* **events as they happen**: the access layer's :class:`~gateway.access.observer.AccessObserver`
  (grants, refusals by code, relocks, alarms, owner notifications), the API's answers (by
  route template and status), and each door's lock driver, wrapped by :class:`MeteredLock`
  (unlock and relock latencies, link errors by code, battery);
* **state read at scrape time** by :class:`GatewayCollector`: each camera's health (live,
  fps, reconnects, dropped packets; labelled ``camera`` with its name), the audit log
  (entries, age of the newest checkpoint and of the newest witness cosignature, how far the
  time floor is ahead of the clock), sync (backlog, last success);
* nothing else: no label carries a ticket, a holder or a session id (metrics are activity
  counts, private to the home; the endpoint listens on localhost unless the owner says
  otherwise).

One :class:`CollectorRegistry` per gateway (not the library's global one), so two gateways in
one process (the tests) never mix their figures.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ble.driver import LockDriver, LockStatus, StatusCallback
from ble.errors import LockError
from gateway.access.observer import (
    AccessEvent,
    AlarmRaised,
    DoorRelocked,
    GrantCommitted,
    OwnerNotification,
    RequestRefused,
)

#: Lock commands take seconds over Bluetooth; the gateway's own overhead milliseconds.
_LOCK_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 40.0, 90.0)
_OVERHEAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class GatewayMetrics:
    """The event metrics of one gateway, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.api_answers = Counter(
            "threshold_api_answers",
            "LAN API answers by route template, status and problem code",
            ["route", "status", "code"],
            registry=r,
        )
        self.grants = Counter(
            "threshold_access_grants",
            "Access grants by door and purpose",
            ["door", "purpose"],
            registry=r,
        )
        self.refusals = Counter(
            "threshold_access_refusals",
            "Refused access requests by door and code (audited: the holder proved possession)",
            ["door", "code", "audited"],
            registry=r,
        )
        self.grant_overhead = Histogram(
            "threshold_grant_overhead_seconds",
            "From the request's arrival to the unlock handed to the lock",
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.relocks = Counter(
            "threshold_relocks",
            "Sessions ended with the door verified locked",
            ["door"],
            registry=r,
        )
        self.alarms = Counter("threshold_alarms", "Alarms raised by reason", ["reason"], registry=r)
        self.notifications = Counter(
            "threshold_owner_notifications", "Owner notifications by kind", ["kind"], registry=r
        )
        self.notification_delivery = Histogram(
            "threshold_notification_delivery_seconds",
            "From an owner notification to its hand-over by each notifier",
            ["notifier"],
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.lock_seconds = Histogram(
            "threshold_lock_command_seconds",
            "Lock commands (unlock, relock, status) from call to answer, by outcome",
            ["door", "command", "outcome"],
            buckets=_LOCK_BUCKETS,
            registry=r,
        )
        self.lock_errors = Counter(
            "threshold_lock_errors",
            "Lock link and driver errors by code",
            ["door", "code"],
            registry=r,
        )
        self.battery = Gauge(
            "threshold_lock_battery_percent",
            "The lock's battery as it last reported",
            ["door"],
            registry=r,
        )
        self.battery_critical = Gauge(
            "threshold_lock_battery_critical",
            "1 when the lock reports critical batteries",
            ["door"],
            registry=r,
        )

    # -- the access layer's events ------------------------------------------------------

    def observe(self, event: AccessEvent) -> None:
        """:class:`~gateway.access.observer.AccessObserver`: count what happened."""
        if isinstance(event, GrantCommitted):
            self.grants.labels(event.door, event.purpose).inc()
            if event.since_arrival_s is not None:
                self.grant_overhead.observe(event.since_arrival_s)
        elif isinstance(event, RequestRefused):
            audited = "true" if event.session is not None else "false"
            self.refusals.labels(event.door, event.code.value, audited).inc()
        elif isinstance(event, DoorRelocked):
            self.relocks.labels(event.door).inc()
        elif isinstance(event, AlarmRaised):
            self.alarms.labels(event.reason).inc()
        elif isinstance(event, OwnerNotification):
            self.notifications.labels(event.kind.value).inc()

    # -- the API's answers --------------------------------------------------------------

    def answered(self, route: str, status: int, code: str) -> None:
        self.api_answers.labels(route, str(status), code).inc()

    # -- the locks ----------------------------------------------------------------------

    def lock_status(self, door: str, status: LockStatus) -> None:
        if status.battery_percent is not None:
            self.battery.labels(door).set(status.battery_percent)
        self.battery_critical.labels(door).set(1 if status.battery_critical else 0)


class MeteredLock:
    """A door's :class:`~ble.driver.LockDriver` that times and counts what passes through.

    Transparent: the same answers and the same exceptions, in the same time (a clock read and
    a counter each way)."""

    def __init__(
        self,
        inner: LockDriver,
        door: str,
        metrics: GatewayMetrics,
        listeners: Sequence[Callable[[str, LockStatus], None]] = (),
    ) -> None:
        self._inner = inner
        self._door = door
        self._metrics = metrics
        #: Told every reading too (Home Assistant's lock entities); must return at once.
        self._listeners = tuple(listeners)

    def _heard(self, status: LockStatus) -> None:
        self._metrics.lock_status(self._door, status)
        for listener in self._listeners:
            listener(self._door, status)

    async def _timed(self, command: str, call: Callable[[], Awaitable[LockStatus]]) -> LockStatus:
        started = time.perf_counter()
        outcome = "ok"
        try:
            status = await call()
        except LockError as exc:
            outcome = exc.code
            self._metrics.lock_errors.labels(self._door, exc.code).inc()
            raise
        except BaseException:
            outcome = "cancelled"
            raise
        finally:
            self._metrics.lock_seconds.labels(self._door, command, outcome).observe(
                time.perf_counter() - started
            )
        self._heard(status)
        return status

    async def status(self) -> LockStatus:
        return await self._timed("status", self._inner.status)

    async def unlock(self) -> LockStatus:
        return await self._timed("unlock", self._inner.unlock)

    async def lock(self) -> LockStatus:
        return await self._timed("lock", self._inner.lock)

    async def unlatch(self) -> LockStatus:
        return await self._timed("unlatch", self._inner.unlatch)

    def subscribe(self, callback: StatusCallback) -> Callable[[], None]:
        def metered(status: LockStatus) -> None:
            self._heard(status)
            callback(status)

        return self._inner.subscribe(metered)

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True, slots=True)
class CameraFacts:
    """One camera's health at scrape time."""

    live: bool
    fps: float | None
    reconnects: int
    dropped_packets: int


@dataclass(frozen=True, slots=True)
class ScrapeSources:
    """Where :class:`GatewayCollector` reads state; each a callable so the owner keeps it."""

    #: Each camera's health by its name (``[camera] name``); empty without a camera.
    camera: Callable[[], Mapping[str, CameraFacts]]
    #: ``(backlog, last success ms or None, acked size)`` of sync, or None without a relay.
    sync: Callable[[], tuple[int, int | None, int] | None]
    #: The database file (read on its own read-only connection at scrape time).
    database: Callable[[], str | None]
    wall_clock: Callable[[], float] = time.time
    #: ``(queued entries, seconds the last of them waits, over the bound)`` of the paced
    #: upload (docs/privacy.md), or None when the upload is not paced.
    upload_queue: Callable[[], tuple[int, float, bool] | None] = lambda: None


class GatewayCollector(Collector):
    """State read when Prometheus scrapes: never cached, so never stale."""

    def __init__(self, sources: ScrapeSources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now_ms = int(self._sources.wall_clock() * 1000)
        cameras = self._sources.camera()
        configured = GaugeMetricFamily(
            "threshold_camera_configured", "How many cameras are configured (0: none)"
        )
        configured.add_metric([], len(cameras))
        yield configured
        if cameras:
            live = GaugeMetricFamily(
                "threshold_camera_live", "1 while the camera's stream is live", labels=["camera"]
            )
            fps = GaugeMetricFamily(
                "threshold_camera_fps", "Frames per second the stream delivers", labels=["camera"]
            )
            reconnects = GaugeMetricFamily(
                "threshold_camera_reconnects", "Reconnections to the camera", labels=["camera"]
            )
            dropped = GaugeMetricFamily(
                "threshold_camera_dropped_packets", "Packets the reader dropped", labels=["camera"]
            )
            for name, facts in cameras.items():
                live.add_metric([name], int(facts.live))
                fps.add_metric([name], facts.fps or 0.0)
                reconnects.add_metric([name], facts.reconnects)
                dropped.add_metric([name], facts.dropped_packets)
            yield from (live, fps, reconnects, dropped)
        yield from self._audit(now_ms)
        sync = self._sources.sync()
        if sync is not None:
            backlog, last_success_ms, acked = sync
            yield GaugeMetricFamily(
                "threshold_sync_backlog_entries",
                "Audit entries the relay has not acknowledged",
                value=backlog,
            )
            yield GaugeMetricFamily(
                "threshold_sync_acked_entries", "The tree size the relay acknowledged", value=acked
            )
            if last_success_ms is not None:
                yield GaugeMetricFamily(
                    "threshold_sync_last_success_age_seconds",
                    "Seconds since the last successful sync round",
                    value=max(0, now_ms - last_success_ms) / 1000,
                )
        queue = self._sources.upload_queue()
        if queue is not None:
            queued, delay_s, over = queue
            yield GaugeMetricFamily(
                "threshold_sync_queued_entries",
                "Entries waiting for an upload slot (docs/privacy.md)",
                value=queued,
            )
            yield GaugeMetricFamily(
                "threshold_sync_queue_delay_seconds",
                "How long the last queued entry waits for its upload slot",
                value=delay_s,
            )
            yield GaugeMetricFamily(
                "threshold_sync_queue_over_bound",
                "1 when more entries wait than [cloud] queue_bound",
                value=int(over),
            )

    def _audit(self, now_ms: int) -> Iterator[GaugeMetricFamily]:
        database = self._sources.database()
        if database is None:
            return
        try:
            conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1.0)
        except sqlite3.Error:
            return
        try:
            entries = conn.execute("SELECT COUNT(*) FROM audit_entry").fetchone()[0]
            newest = conn.execute("SELECT MAX(time_ms) FROM checkpoint").fetchone()[0]
            cosigned = conn.execute(
                "SELECT MAX(received_ms) FROM checkpoint_cosignature"
            ).fetchone()[0]
            attested = conn.execute("SELECT MAX(tree_size) FROM checkpoint").fetchone()[0]
            floor_row = conn.execute(
                "SELECT time_ms FROM time_floor WHERE singleton = 1"
            ).fetchone()
        except sqlite3.Error:
            return
        finally:
            conn.close()
        yield GaugeMetricFamily("threshold_audit_entries", "Audit log entries", value=entries)
        yield GaugeMetricFamily(
            "threshold_audit_unattested_entries",
            "Entries after the newest signed checkpoint",
            value=entries - (attested or 0),
        )
        if floor_row is not None:
            yield GaugeMetricFamily(
                "threshold_time_floor_ahead_seconds",
                "Seconds the time floor is ahead of the gateway's clock (0 when it is not)",
                value=max(0, int(floor_row[0]) - now_ms) / 1000,
            )
        if newest is not None:
            yield GaugeMetricFamily(
                "threshold_checkpoint_age_seconds",
                "Seconds since the newest signed checkpoint",
                value=max(0, now_ms - newest) / 1000,
            )
        if cosigned is not None:
            yield GaugeMetricFamily(
                "threshold_cosignature_age_seconds",
                "Seconds since the newest witness cosignature arrived",
                value=max(0, now_ms - cosigned) / 1000,
            )
