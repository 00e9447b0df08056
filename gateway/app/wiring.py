"""The one place that wires the gateway from its configuration and owns its lifecycle.

Start-up, in order, each step logged on one line:

1. configuration (already validated by :func:`gateway.app.config.load`);
2. the gateway key (mode 0600 checked) and the store (migrated, identity claimed);
3. the locks, one driver per door (``sim`` runs the virtual Nuki lock in this process);
4. the cameras, if ``[camera] url`` is set or ``[[camera]]`` tables name several (an RTSP
   URL, or a local video file played in a loop): each one's reader, pre-roll ring and stall
   watch start, and :class:`gateway.access.filming.EntryCameras` becomes the access service's
   witness (clips, snapshots, motion, stalls, each camera for the doors it watches);
5. the access service, which reconciles every session the store holds unfinished: it reads
   the lock, relocks if needed and records what happened, before any request is accepted;
6. Home Assistant's MQTT bridge, if ``[mqtt] host`` is set (it connects in the background:
   a broker that is away never delays start or the door);
7. the LAN API (HTTPS unless the config says ``tls = false``), with the owner's web app
   (``[app]``, docs/owner-app.md), whose notifier is one of the access service's observers;
8. the mDNS advertisement.

Shutdown runs the other way: stop advertising, stop accepting connections, relock every door
a session holds (within a budget), record the clips in flight (cut short) and close the
camera, tell Home Assistant ``offline``, close the API's connections, close the locks, close
the store. ``threshold run`` calls :meth:`Gateway.stop` on SIGTERM or SIGINT and exits
within 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import ssl
import time
import zoneinfo
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

from aiohttp import web
from nacl.signing import SigningKey

from ble.driver import LockDriver, LockStatus
from ble.errors import LockError
from gateway import __version__
from gateway.access.admission import AccessSettings
from gateway.access.errors import AccessCode, AccessRefused
from gateway.access.filming import EntryCamera, EntryCameras
from gateway.access.ledger import StoreLedger
from gateway.access.observer import AccessObserver, LoggingObserver, ObserverSet
from gateway.access.policy import PolicyRules
from gateway.access.service import AccessService
from gateway.api.context import ApiContext
from gateway.api.listener import Listener
from gateway.api.mdns import MdnsAdvertiser, service_info
from gateway.api.ratelimit import RateLimiter
from gateway.api.routes import API_VERSION
from gateway.api.server import serve as serve_api
from gateway.app.config import DEFAULT_CLIPS, CloudConfig, GatewayConfig, load
from gateway.app.config import CameraConfig as CameraSettings
from gateway.app.file_modes import refuse_exposed, secret_files
from gateway.app.identity import load_signing_key
from gateway.app.locks import LockFleet, open_locks
from gateway.app.metrics import (
    CameraFacts,
    GatewayCollector,
    GatewayMetrics,
    MeteredLock,
    ScrapeSources,
)
from gateway.app.metrics_server import serve_metrics
from gateway.app.seal_keys import SealKeyPool
from gateway.app.supervisor import JobState, Supervisor
from gateway.app.systemd_notify import SystemdNotifier
from gateway.app.tls import refresh_certificate, server_context, tls_fingerprint
from gateway.errors import GatewayError
from gateway.mqtt.bridge import BridgeSetup, MqttBridge, read_password
from gateway.owner.app import AppSettings, OwnerApp
from gateway.owner.feed import LiveFeed, OwnerNotifier
from gateway.owner.invitations import Visitors
from gateway.push.sender import PushSender, client_ssl
from gateway.push.vapid import VapidSigner
from gateway.push.vapid import ensure_key as ensure_vapid_key
from gateway.remote.certificate import RemoteCertificate
from gateway.remote.errors import RemoteError
from gateway.remote.relay_api import RelayAccess, RelayApi
from gateway.remote.tunnel import REMOTE_STATUS_FILE, RemoteTunnel
from gateway.sync.mailbox import AccessMailbox
from gateway.sync.pacing import PacingConfig
from gateway.sync.task import CloudSync, SyncConfig
from gateway.sync.witnesses import WitnessEndpoint, WitnessSubmitter
from gateway.trust.base64url import b64u_encode
from gateway.trust.owner_request import OwnerAudience, OwnerRequestVerifier
from gateway.trust.seal import Sealer
from gateway.trust.verification import TrustAnchors
from store.checkpoint import CheckpointSigner
from store.db import DEFAULT_CHECKPOINT_EVERY, Store
from store.outage_journal import OutageJournal, journal_path
from video.camera import Camera, CameraConfig
from video.motion import MotionConfig
from video.source import redact_url

log = logging.getLogger("threshold")


class ListenError(GatewayError):
    code = "cannot_listen"


SHUTDOWN_RELOCK_BUDGET_S = 3.0
SHUTDOWN_CLIP_BUDGET_S = 1.0
PURGE_EVERY_S = 60
CHECKPOINT_EVERY_S = 600
TLS_RENEWAL_CHECK_EVERY_S = 86400
#: How often the remote certificate's expiry is checked (and a failed ACME order retried).
REMOTE_CERT_CHECK_EVERY_S = 3600


async def _purge(store: Store) -> None:
    await store.purge_challenges()


async def _checkpoint(store: Store) -> None:
    # A signed checkpoint of whatever was appended since the last one, so that recent
    # entries are attested even when fewer than the store's every-N threshold were written.
    latest = await store.latest_checkpoint()
    if latest is None or latest.checkpoint.tree_size < store.tree_size:
        await store.checkpoint()


async def _cosign(submitter: WitnessSubmitter) -> None:
    # Each witness's outcome is logged by the submitter; one failing never fails the job.
    await submitter.submit_all()


def pacing_of(cloud: CloudConfig) -> PacingConfig | None:
    """The paced upload's settings from ``[cloud]`` (docs/privacy.md), None when not paced."""
    if not cloud.paced:
        return None
    return PacingConfig(
        cloud.interval_s, cloud.slots, cloud.interval_s * cloud.jitter, cloud.queue_bound
    )


@dataclass(frozen=True, slots=True)
class Overrides:
    """Run-time changes to the configuration (tests, the demo, the benchmark)."""

    port: int | None = None
    mdns: bool | None = None
    client_rate_per_minute: int | None = None
    ticket_rate_per_minute: int | None = None
    #: An RTSP URL or video file path instead of the first camera's ``url``
    #: (``threshold run --camera``).
    camera_url: str | None = None
    #: The metrics port instead of ``[metrics] bind``'s (0: any free port).
    metrics_port: int | None = None


class Gateway:
    """The running service. ``await start()``, then ``await stop()`` (always)."""

    def __init__(
        self,
        config: GatewayConfig,
        overrides: Overrides = Overrides(),
        *,
        observer: AccessObserver | None = None,
    ) -> None:
        self.config = config
        self.overrides = overrides
        #: What the access service reports to (None: the default, which logs the owner's
        #: notifications); the benchmark's timing, later metrics and the owner's notifier.
        self.observer = observer
        #: The owner's notices: the access observer that turns each event into a notice for
        #: every notifier of its list (the app's live feed now; Web Push adds its own with
        #: ``notifier.add``).
        self.metrics = GatewayMetrics()
        self.feed = LiveFeed(self.metrics.notification_delivery.labels("app").observe)
        self.notifier = OwnerNotifier([self.feed])
        #: The owner's web app, while the gateway runs with ``[app] enabled``.
        self.owner_app: OwnerApp | None = None
        #: Keys for people (docs/visitors.md); with the owner app only.
        self.visitors: Visitors | None = None
        self.store: Store | None = None
        self._seal_keys: SealKeyPool | None = None
        self.journal: OutageJournal | None = None
        self.locks: LockFleet | None = None
        self.service: AccessService | None = None
        self.camera: EntryCameras | None = None
        self.public_key = ""
        self.fingerprint: str | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._listener: Listener | None = None
        self._mdns: MdnsAdvertiser | None = None
        self._jobs = Supervisor()
        self._background: set[asyncio.Task[None]] = set()
        self._stopped = False
        self.sync: CloudSync | None = None
        #: Uploads are paced (docs/privacy.md): the upload slots sign every checkpoint.
        self._paced = False
        self.witnesses: WitnessSubmitter | None = None
        #: Where Prometheus scrapes (``http://127.0.0.1:PORT/metrics``), None when off.
        self.metrics_url: str | None = None
        self._metrics_runner: web.AppRunner | None = None
        #: Home Assistant's bridge while ``[mqtt] host`` is set.
        self.mqtt: MqttBridge | None = None
        #: Remote reach (``[remote]``, docs/remote.md): the certificate, the tunnel and the
        #: listeners serving the app under the remote name (loopback for the tunnel, LAN).
        self.remote_certificate: RemoteCertificate | None = None
        self.tunnel: RemoteTunnel | None = None
        self.remote_listeners: list[Listener] = []
        self._remote_context: ssl.SSLContext | None = None
        self._remote_check: Callable[[], Awaitable[None]] | None = None
        #: Web Push to the owner's devices, with the app and ``[push] enabled``.
        self.push: PushSender | None = None

    @classmethod
    def from_file(cls, path: Path, overrides: Overrides = Overrides()) -> Gateway:
        return cls(load(path), overrides)

    @property
    def app(self) -> web.Application | None:
        """The API's aiohttp application while the gateway runs (its routes, for the OpenAPI
        check), else None."""
        return self._runner.app if self._runner is not None else None

    @property
    def jobs(self) -> Mapping[str, JobState]:
        """The supervised background jobs by name, read-only (runs, failures, first run)."""
        return MappingProxyType(self._jobs.jobs)

    @property
    def scheme(self) -> str:
        return "https" if self.config.api.tls else "http"

    @property
    def app_url(self) -> str | None:
        """The owner app's address (its one origin), or None when the app is off."""
        return None if self.owner_app is None else f"{self.owner_app.origin}/app/"

    @property
    def url(self) -> str:
        host = self.config.api.host
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        cfg = self.config
        o = self.overrides
        log.info(
            "config: gateway %s, doors %s, time zone %s",
            cfg.gateway_id,
            ", ".join(f"{d.name}={d.lock_spec}" for d in cfg.doors),
            cfg.timezone,
        )
        refuse_exposed(secret_files(cfg))
        key = load_signing_key(cfg.key_file)
        self.public_key = b64u_encode(bytes(key.verify_key))
        # Entries are sealed to the owner from the first one, so the log can go to the cloud
        # whenever sync is configured (docs/cloud.md); the plaintext stays beside them here.
        # Each entry's ephemeral seal key is made ahead by a thread (gateway.app.seal_keys).
        if cfg.cloud.seal:
            self._seal_keys = SealKeyPool(Sealer(cfg.owner_public_key))
            self._seal_keys.start()
        # Paced uploads (docs/privacy.md): every checkpoint at an upload boundary must be the
        # slot's own. A checkpoint signed on an event (every N entries, on a timer) could
        # land on a later boundary and be reused there, carrying the event's time; so the
        # slots are the only checkpoints, and they come every interval anyway.
        paced = self._paced = cfg.cloud.url is not None and pacing_of(cfg.cloud) is not None
        self.store = await Store.open(
            cfg.database,
            signer=CheckpointSigner(key, cfg.gateway_id),
            seal=None if self._seal_keys is None else self._seal_keys.seal,
            checkpoint_every=0 if paced else DEFAULT_CHECKPOINT_EVERY,
        )
        log.info("store: %s open, %d audit entries", cfg.database, self.store.tree_size)

        self.locks = await open_locks(cfg, self.store)
        log.info("locks: %s", self.locks.describe())

        settings = AccessSettings(
            gateway_id=cfg.gateway_id,
            anchors=TrustAnchors.of(cfg.owner_public_key),
            zone=zoneinfo.ZoneInfo(cfg.timezone),
            rules=PolicyRules(
                allow_without_camera=cfg.policy.allow_without_camera,
                approval_timeout_s=cfg.policy.approval_timeout_s,
            ),
            default_open_s=cfg.policy.default_open_s,
            max_open_s=cfg.policy.max_open_s,
            challenge_ttl=timedelta(seconds=cfg.policy.challenge_ttl_s),
            skew=timedelta(seconds=cfg.policy.clock_skew_s),
            lock_timeout_s=max([cfg.lock.timeout_s, *self.locks.operation_budgets()]),
            relock_retry_initial_s=cfg.lock.relock_retry_initial_s,
            relock_retry_max_s=cfg.lock.relock_retry_max_s,
        )
        # What an emergency (or a relock) did while the database could not write waits here
        # until the store takes it (issue 11, finding 4; docs/audit-log.md).
        self.journal = await asyncio.to_thread(OutageJournal.open, journal_path(cfg.database))
        if self.journal.pending:
            log.warning(
                "outage journal: %d batch(es) from a time the store could not write; "
                "replaying before any request",
                len(self.journal.pending),
            )
        ledger = StoreLedger(
            self.store,
            cfg.gateway_id,
            self.journal,
            scheduled_receipts=pacing_of(cfg.cloud) is not None and cfg.cloud.url is not None,
        )
        cameras = list(cfg.cameras)
        if o.camera_url:
            cameras[0:1] = [dataclasses.replace(cfg.camera, url=o.camera_url)]
        if cameras:
            self.camera = EntryCameras(
                [
                    EntryCamera(_build_camera(cfg, c), self.store, doors=c.doors or None)
                    for c in cameras
                ]
            )
            await self.camera.start()
        if cfg.mqtt.enabled:
            delivered = self.metrics.notification_delivery.labels("mqtt").observe
            self.mqtt = _mqtt_bridge(cfg, self.camera, self._owner_lock, delivered)
        listeners = [] if self.mqtt is None else [self.mqtt.lock_status]
        drivers = {
            door: MeteredLock(driver, door, self.metrics, listeners)
            for door, driver in self.locks.drivers.items()
        }
        observers: list[AccessObserver] = [
            self.metrics,
            self.observer or LoggingObserver(),
            self.notifier,
        ]
        if self.mqtt is not None:
            observers.append(self.mqtt)
        self.service = AccessService(
            settings,
            ledger,
            drivers,
            witness=self.camera,
            observer=ObserverSet(*observers),
        )
        if self.camera is not None:
            service = self.service
            self.camera.on_stall = service.camera_stalled
            self.camera.on_recorded = service.notify_changed
            described = []
            for entry, c in zip(self.camera.cameras, cameras, strict=True):
                live = await entry.camera.wait_live(c.read_timeout_s * 2)
                doors = ", ".join(c.doors) if c.doors else "every door"
                described.append(
                    f"{c.name} {redact_url(c.url or '')} for {doors} "
                    f"({'live' if live else 'not live yet'})"
                )
            camera = "; ".join(described)
        else:
            camera = "none configured (camera_live is false)"
        log.info(
            "camera: %s; allow_without_camera = %s",
            camera,
            str(cfg.policy.allow_without_camera).lower(),
        )
        await self.service.start()
        await ledger.record("gateway.started", {"gateway": cfg.gateway_id})
        if self.mqtt is not None:
            if self.camera is not None:
                self.camera.on_snapshot = self.mqtt.snapshot
            await self.mqtt.start()
            self._read_doors_once(drivers)
            log.info(
                "mqtt: Home Assistant via %s:%d (%s, commands %s)",
                cfg.mqtt.host,
                cfg.mqtt.port,
                "TLS" if cfg.mqtt.tls else "plain",
                "on" if cfg.mqtt.commands else "off",
            )
        if cfg.cloud.url is not None:
            self.sync = CloudSync(
                self.store,
                SyncConfig(
                    cloud_url=cfg.cloud.url,
                    gateway_id=cfg.gateway_id,
                    gateway_key=key,
                    interval_s=cfg.cloud.interval_s,
                    pin_sha256=cfg.cloud.pin_sha256,
                    relay_key=cfg.cloud.relay_public_key,
                    status_file=cfg.database.with_name("sync-status.json"),
                    pacing=pacing_of(cfg.cloud),
                ),
                AccessMailbox(self.service),
            )
            await self.sync.start()
            log.info("sync: to %s every %.0f s", cfg.cloud.url, cfg.cloud.interval_s)
        log.info("access: ready, %d unfinished session(s) reconciled", self.service.reconciled)

        store = self.store
        self._jobs.start("purge expired challenges", lambda: _purge(store), PURGE_EVERY_S)
        if not paced:
            self._jobs.start("checkpoint", lambda: _checkpoint(store), CHECKPOINT_EVERY_S)
        if cfg.witnesses:
            submitter = WitnessSubmitter(
                store,
                tuple(WitnessEndpoint.parse(w.label, w.url, w.vkey) for w in cfg.witnesses),
                # Paced: witnesses are shown the scheduled checkpoints only (docs/privacy.md).
                scheduled=cfg.cloud.url is not None and cfg.cloud.paced,
            )
            self.witnesses = submitter
            self._jobs.start("witness cosignatures", lambda: _cosign(submitter), CHECKPOINT_EVERY_S)
            log.info("witnesses: %s", ", ".join(w.label for w in cfg.witnesses))
        log.info(
            "jobs: challenge purge every %ds, checkpoint every %ds",
            PURGE_EVERY_S,
            CHECKPOINT_EVERY_S,
        )

        ssl_context: ssl.SSLContext | None = None
        if cfg.api.tls:
            ssl_context = await self._tls(cfg)
        ctx = ApiContext(
            service=self.service,
            camera=self.camera.camera if self.camera is not None else None,
            cameras=(
                {c.name: c.camera for c in self.camera.cameras} if self.camera is not None else {}
            ),
            camera_doors={c.name: c.doors for c in cameras},
            gateway_id=cfg.gateway_id,
            public_key=self.public_key,
            tls_fingerprint=self.fingerprint,
            owner_verifier=OwnerRequestVerifier(
                cfg.owner_public_key,
                OwnerAudience(cfg.gateway_id, self.fingerprint),
                skew_s=cfg.api.owner_skew_s,
                not_before=time.time(),
            ),
            client_limiter=RateLimiter(o.client_rate_per_minute or cfg.api.client_rate_per_minute),
            ticket_limiter=RateLimiter(o.ticket_rate_per_minute or cfg.api.ticket_rate_per_minute),
            max_body_bytes=cfg.api.max_body_bytes,
            on_answer=self.metrics.answered,
        )
        if cfg.app.enabled:
            self.owner_app = OwnerApp(
                AppSettings(
                    rp_id=cfg.app.name,
                    zone=zoneinfo.ZoneInfo(cfg.timezone),
                    # Every camera's clip directory (the default when none is set).
                    clip_dirs=tuple(
                        {c.clip_dir or cfg.directory / DEFAULT_CLIPS: None for c in cameras}
                    )
                    or (cfg.directory / DEFAULT_CLIPS,),
                    session_ttl_s=cfg.app.session_ttl_s,
                    enroll_ttl_s=cfg.app.enroll_ttl_s,
                ),
                self.store,
                self.service,
                feed=self.feed,
                camera=ctx.camera,
                cameras=ctx.cameras,
                camera_doors=ctx.camera_doors,
            )
            ctx.owner_app = self.owner_app
            owner_app = self.owner_app
            self.visitors = ctx.visitors = Visitors(
                cfg.directory,
                TrustAnchors.of(cfg.owner_public_key),
                cfg.gateway_id,
                self.store,
                zone=zoneinfo.ZoneInfo(cfg.timezone),
                doors=frozenset(self.service.doors),
                origin=lambda: owner_app.origin,
                revoke_here=self.service.revoke_here,
            )
            await self.visitors.restore_revocations()
            if cfg.push.enabled:
                await self._start_push(cfg, self.owner_app)
        port = cfg.api.port if o.port is None else o.port
        try:
            self._listener = await serve_api(ctx, cfg.api.host, port, ssl_context)
        except OSError as exc:
            raise ListenError(
                f"api: cannot listen on {cfg.api.host}:{port} ({exc.strerror}); "
                "change [api] bind in threshold.toml"
            ) from None
        self._runner = self._listener.runner
        self.port = self._listener.port
        if self.owner_app is not None:
            self.owner_app.bind(self.port)
        if cfg.remote.enabled:
            await self._start_remote(cfg, ctx, key)
        log.info(
            "api: listening on %s (%s)",
            self.url,
            f"TLS, fingerprint {self.fingerprint}" if cfg.api.tls else "plain HTTP, as configured",
        )

        if cfg.api.mdns if o.mdns is None else o.mdns:
            self._mdns = MdnsAdvertiser(
                service_info(
                    cfg.gateway_id,
                    cfg.api.host,
                    self.port,
                    self.fingerprint,
                    API_VERSION,
                    cfg.api.tls,
                ),
                cfg.api.host,
            )
            await self._mdns.start()
            log.info("mdns: advertising _threshold._tcp.local. on %s", cfg.api.host)

        if cfg.metrics.enabled:
            await self._serve_metrics(cfg)

    async def _owner_lock(self, door: str, action: str, by: str) -> LockStatus:
        if self.service is None:
            raise AccessRefused(AccessCode.STORAGE_UNAVAILABLE, "the gateway is not running")
        return await self.service.owner_lock(door, action, by=by)

    def _read_doors_once(self, drivers: Mapping[str, LockDriver]) -> None:
        """Read each lock once in the background, so Home Assistant has states before the
        first visit (the metered drivers hand the readings to the bridge)."""

        async def read(door: str, driver: LockDriver) -> None:
            try:
                await asyncio.wait_for(driver.status(), self.config.lock.timeout_s)
            except (LockError, TimeoutError) as exc:
                log.warning("mqtt: door %s not read at start (%s)", door, exc)

        for door, driver in drivers.items():
            task = asyncio.create_task(read(door, driver), name=f"read {door}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _serve_metrics(self, cfg: GatewayConfig) -> None:
        """The metrics endpoint; a port already taken costs the metrics, never the door."""
        camera, sync = self.camera, self.sync

        def camera_facts() -> dict[str, CameraFacts]:
            out: dict[str, CameraFacts] = {}
            for entry in () if camera is None else camera.cameras:
                h = entry.camera.health()
                out[entry.name] = CameraFacts(h.live, h.fps, h.reconnects, h.dropped_packets)
            return out

        def queue_facts() -> tuple[int, float, bool] | None:
            if sync is None:
                return None
            st = sync.status
            if st.queued is None or st.queue_delay_s is None:
                return None
            return st.queued, st.queue_delay_s, bool(st.queue_over_bound)

        def sync_facts() -> tuple[int, int | None, int] | None:
            if sync is None:
                return None
            st = sync.status
            return st.backlog, st.last_success_ms, st.acked_size

        self.metrics.registry.register(
            GatewayCollector(
                ScrapeSources(
                    camera_facts,
                    sync_facts,
                    lambda: str(cfg.database.resolve()),
                    upload_queue=queue_facts,
                )
            )
        )
        port = (
            cfg.metrics.port if self.overrides.metrics_port is None else self.overrides.metrics_port
        )
        try:
            self._metrics_runner, bound = await serve_metrics(
                self.metrics.registry, cfg.metrics.host, port
            )
        except OSError as exc:
            log.warning(
                "metrics: cannot listen on %s:%d (%s); the gateway runs without them",
                cfg.metrics.host,
                port,
                exc.strerror,
            )
            return
        host = f"[{cfg.metrics.host}]" if ":" in cfg.metrics.host else cfg.metrics.host
        self.metrics_url = f"http://{host}:{bound}/metrics"
        log.info("metrics: %s", self.metrics_url)

    async def _start_remote(self, cfg: GatewayConfig, ctx: ApiContext, key: SigningKey) -> None:
        """Remote reach: the certificate (obtained or renewed now if due, then checked every
        hour), and once there is one, the app served under the remote name and the tunnel.
        A relay or ACME server out of reach costs remote reach only, never the start."""
        remote = cfg.remote
        assert cfg.cloud.url is not None  # the configuration requires it
        access = RelayAccess(cfg.cloud.url, cfg.gateway_id, key, pin_sha256=cfg.cloud.pin_sha256)
        certificate = RemoteCertificate(RelayApi(access), remote, cfg.directory)
        self.remote_certificate = certificate
        if self.owner_app is not None:
            lan = remote.lan_origin
            self.owner_app.reach(remote.origin, *(() if lan is None else (lan,)))

        async def check() -> None:
            try:
                renewed = await certificate.ensure()
            except RemoteError as exc:
                # Retried at the next check; the current certificate (if any) keeps serving.
                log.warning("remote: no certificate for %s: %s", remote.host_name, exc.message)
                return
            if certificate.current is None:
                return
            if self._remote_context is None:
                await self._open_remote(cfg, ctx, certificate, access)
            elif renewed:
                # New handshakes use the new certificate; open connections keep theirs.
                self._remote_context.load_cert_chain(certificate.path)
                log.info("remote: certificate renewed for %s", remote.host_name)

        self._remote_check = check
        self._jobs.start("remote certificate", check, REMOTE_CERT_CHECK_EVERY_S)

    async def check_remote_certificate(self) -> None:
        """Run the remote certificate's check now (renewed if due, the listeners reloaded)."""
        if self._remote_check is not None:
            await self._remote_check()

    async def _open_remote(
        self,
        cfg: GatewayConfig,
        ctx: ApiContext,
        certificate: RemoteCertificate,
        access: RelayAccess,
    ) -> None:
        context = server_context(certificate.path, certificate.path)
        self._remote_context = context
        # The tunnel's end: snitun's Connector joins each relay channel to this listener, so
        # the owner's TLS ends here, in the gateway, with the remote name's certificate.
        tunnel_end = await serve_api(ctx, "127.0.0.1", 0, context)
        self.remote_listeners.append(tunnel_end)
        remote = cfg.remote
        if remote.lan_host is not None:
            try:
                self.remote_listeners.append(
                    await serve_api(ctx, remote.lan_host, remote.lan_port, context)
                )
                log.info("remote: the app on the home network at %s", remote.lan_origin)
            except OSError as exc:
                log.warning(
                    "remote: cannot listen on %s:%d (%s); the app is reachable through the"
                    " relay only",
                    remote.lan_host,
                    remote.lan_port,
                    exc.strerror,
                )
        self.tunnel = RemoteTunnel(
            RelayApi(access),
            remote.name,
            ("127.0.0.1", tunnel_end.port),
            status_file=cfg.directory / REMOTE_STATUS_FILE,
        )
        await self.tunnel.start()
        log.info("remote: tunnel to %s for %s", cfg.cloud.url, remote.origin)

    async def _tls(self, cfg: GatewayConfig) -> ssl.SSLContext:
        """The server context, after renewing the certificate (same key) if it is due; a
        daily job renews it again while the gateway runs (``gateway.app.tls``)."""
        cert, key = cfg.api.tls_cert, cfg.api.tls_key
        gateway_id, host = cfg.gateway_id, cfg.api.host
        reason = await asyncio.to_thread(refresh_certificate, cert, key, gateway_id, host)
        if reason is not None:
            log.info("tls: certificate renewed with the same key: %s", reason)
        context = server_context(cert, key)
        self.fingerprint = tls_fingerprint(cert)

        async def renew() -> None:
            why = await asyncio.to_thread(refresh_certificate, cert, key, gateway_id, host, context)
            if why is not None:
                log.info("tls: certificate renewed with the same key: %s", why)

        self._jobs.start("tls certificate renewal", renew, TLS_RENEWAL_CHECK_EVERY_S)
        return context

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._mdns is not None:
            with contextlib.suppress(Exception):
                await self._mdns.stop()
        await self._jobs.stop()
        if self.tunnel is not None:
            await self.tunnel.stop()
        if self.remote_certificate is not None:
            await self.remote_certificate.close()
        if self.sync is not None:
            await self.sync.stop()
        if self.service is not None:
            await self.service.shutdown(SHUTDOWN_RELOCK_BUDGET_S)
        if self.camera is not None:
            try:
                await self.camera.close(SHUTDOWN_CLIP_BUDGET_S)
            except Exception:
                log.exception("camera: close failed")
        for task in list(self._background):
            task.cancel()
        if self.push is not None:
            await self.push.stop()
        if self.mqtt is not None:
            # After the relocks, so Home Assistant sees the doors' last states, then offline.
            await self.mqtt.stop()
        if self.service is not None:
            with contextlib.suppress(Exception):
                await self.service.ledger.record(
                    "gateway.stopped", {"gateway": self.config.gateway_id}
                )
        self.feed.end_all()
        if self._listener is not None:
            await self._listener.stop()
        for listener in self.remote_listeners:
            await listener.stop()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        if self.locks is not None:
            await self.locks.close()
        if self.store is not None:
            if not self._paced:  # paced: only the slots sign checkpoints (see _start)
                with contextlib.suppress(Exception):
                    await self.store.checkpoint()  # everything this run wrote, attested
            await self.store.close()
        if self._seal_keys is not None:
            self._seal_keys.close()
        if self.journal is not None:
            self.journal.close()
        log.info("stopped")

    async def _start_push(self, cfg: GatewayConfig, owner_app: OwnerApp) -> None:
        """Web Push (docs/owner-app.md, "Notifications"): the VAPID key (made the first
        time), the sender as one more of the owner notifier's notifiers."""
        assert self.store is not None
        key = await asyncio.to_thread(ensure_vapid_key, cfg.push.key_file)
        signer = VapidSigner(key, cfg.push.subject)
        self.push = PushSender(
            self.store,
            signer,
            cfg.push,
            ssl_context=await asyncio.to_thread(client_ssl, cfg.push),
            delivered=self.metrics.notification_delivery.labels("push").observe,
        )
        await self.push.start()
        self.notifier.add(self.push)
        owner_app.push_key = signer.public_key
        log.info("push: Web Push on (window %d s)", cfg.push.ttl_s)


def _mqtt_bridge(
    cfg: GatewayConfig,
    camera: EntryCameras | None,
    lock_act: Callable[[str, str, str], Awaitable[LockStatus]],
    delivered: Callable[[float], None],
) -> MqttBridge:
    password = read_password(cfg.mqtt)
    return MqttBridge(
        cfg.mqtt,
        BridgeSetup(
            gateway_id=cfg.gateway_id,
            doors=tuple(d.name for d in cfg.doors),
            version=__version__,
            password=password,
            camera_live=None if camera is None else camera.all_live,
            lock_act=lock_act,
            notification_delivered=delivered,
        ),
    )


def _build_camera(cfg: GatewayConfig, c: CameraSettings) -> Camera:
    url = c.url or ""
    if "://" not in url:
        path = Path(url).expanduser()
        url = str(path if path.is_absolute() else cfg.directory / path)

    def local(setting: str | None) -> str | None:
        if setting is None or "://" in setting:
            return setting
        path = Path(setting).expanduser()
        return str(path if path.is_absolute() else cfg.directory / path)

    return Camera(
        CameraConfig(
            url=url,
            name=c.name,
            clip_dir=c.clip_dir or cfg.directory / DEFAULT_CLIPS,
            transport=c.transport,
            audio=c.audio,
            motion_url=local(c.motion_url),
            read_timeout_s=c.read_timeout_s,
            open_timeout_s=c.open_timeout_s,
            max_silence_s=c.max_silence_s,
            preroll_s=c.preroll_s,
            post_roll_s=c.post_roll_s,
            ring_max_bytes=c.ring_max_mb * 1024 * 1024,
            analyzeduration_us=c.analyzeduration_us,
            probesize=c.probesize,
            clip_budget_bytes=c.clip_budget_mb * 1024 * 1024,
            motion=MotionConfig() if c.motion else None,
            motion_fps=c.motion_fps,
        )
    )


async def serve(config_path: Path, overrides: Overrides = Overrides()) -> None:
    """``threshold run``: start, wait for SIGTERM or SIGINT, stop in order."""
    gateway = Gateway.from_file(config_path, overrides)
    systemd = SystemdNotifier()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watchdog: asyncio.Task[None] | None = None
    try:
        await gateway.start()
        print(f"threshold: gateway {gateway.config.gateway_id} ready at {gateway.url}", flush=True)
        systemd.ready(f"serving {gateway.config.gateway_id} at {gateway.url}")
        watchdog = asyncio.create_task(systemd.keep_alive(), name="systemd-watchdog")
        await stop.wait()
        log.info("signal received: relocking and shutting down")
    finally:
        systemd.stopping("relocking and shutting down")
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        await asyncio.wait_for(gateway.stop(), timeout=4.5)
