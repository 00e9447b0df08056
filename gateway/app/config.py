"""threshold.toml: the gateway's configuration, loaded with tomllib into frozen dataclasses.

Every key has one default: the dataclass field below (or a ``DEFAULT_`` constant for the
``[gateway]`` table, whose dataclass has no defaults). :func:`parse` reads its defaults from
them, and :data:`TEMPLATE` (the commented file ``threshold init`` writes) shows them; a test
parses the template and holds every value equal to these defaults, key by key.

Loading validates everything up front and fails with one :class:`ConfigError` whose message
names the dotted key and the problem, so a typo never surfaces later as a strange
runtime error. Unknown keys are errors too: a misspelt ``allow_without_camra`` must not
silently leave the default in force.

About 540 lines because every table of threshold.toml, its parser and its commented
template stay side by side, so a new key is added in one place.

Secrets never live in the TOML: it names files (the gateway key, the TLS key), resolved
relative to the directory holding threshold.toml.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ble.vendors import VENDORS, spec_examples
from gateway.errors import ConfigError
from gateway.mqtt.settings import MqttConfig
from gateway.push.settings import SUBJECT_RE, PushConfig
from gateway.remote.settings import RemoteConfig
from gateway.trust.base64url import b64u_decode
from store import cosignature
from store.errors import InvalidEntry

GATEWAY_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
DOOR_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
BLE_ADDRESS_RE = re.compile(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}")


DEFAULT_TIMEZONE = "UTC"
DEFAULT_KEY_FILE = "gateway.key"
DEFAULT_DATABASE = "threshold.db"
DEFAULT_CLIPS = "clips"  # CameraConfig.clip_dir None means this, under the gateway directory
CAMERA_NAME_RE = DOOR_NAME_RE


@dataclass(frozen=True, slots=True)
class DoorConfig:
    name: str
    #: The vendor's name in :data:`ble.vendors.VENDORS`: ``sim`` (the virtual Nuki lock, in
    #: process), ``sim-switchbot`` (the virtual SwitchBot Lock), ``nuki`` or ``switchbot``.
    lock: str
    #: The lock's BLE address (vendors of real locks only).
    address: str | None = None

    @property
    def lock_spec(self) -> str:
        return self.lock if self.address is None else f"{self.lock}:{self.address}"


@dataclass(frozen=True, slots=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8443
    tls: bool = True
    tls_cert: Path = Path("tls.crt")
    tls_key: Path = Path("tls.key")
    max_body_bytes: int = 16 * 1024
    client_rate_per_minute: int = 120
    ticket_rate_per_minute: int = 20
    owner_skew_s: float = 120.0
    mdns: bool = True


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    allow_without_camera: bool = False
    approval_timeout_s: float = 300.0
    default_open_s: float = 60.0
    max_open_s: float = 900.0
    challenge_ttl_s: float = 10.0
    clock_skew_s: float = 120.0


@dataclass(frozen=True, slots=True)
class LockConfig:
    timeout_s: float = 10.0
    relock_retry_initial_s: float = 1.0
    relock_retry_max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """One camera: ``[camera]`` (the home's one camera, watching every door) or one of the
    ``[[camera]]`` tables (each named, with the doors it watches). ``url`` is an RTSP URL, or
    a local video file path (played in a loop: the demo). Every setting of the reader
    (:class:`video.source.SourceConfig`) is here."""

    url: str | None = None
    name: str = "camera"
    #: The doors this camera watches; empty: every door.
    doors: tuple[str, ...] = ()
    #: The camera's low-resolution substream, decoded for motion instead of the main one.
    motion_url: str | None = None
    #: RTSP transport: "tcp" (default: UDP loses packets on Wi-Fi) or "udp".
    transport: str = "tcp"
    #: Record the camera's audio track; false where the law forbids recording speech.
    audio: bool = True
    clip_dir: Path | None = None  # None: <gateway directory>/clips (/<name> with several)
    clip_budget_mb: int = 2048
    preroll_s: float = 5.0
    post_roll_s: float = 5.0
    read_timeout_s: float = 2.0
    open_timeout_s: float = 5.0
    max_silence_s: float = 4.0
    ring_max_mb: int = 32
    analyzeduration_us: int = 500_000
    probesize: int = 262_144
    motion: bool = True
    motion_fps: float = 4.0

    def watches(self, door: str) -> bool:
        return not self.doors or door in self.doors


@dataclass(frozen=True, slots=True)
class CloudConfig:
    """Cloud sync (docs/cloud.md). No ``url``: no sync, the gateway stays fully local."""

    url: str | None = None
    interval_s: float = 60.0
    pin_sha256: bytes | None = None
    relay_public_key: bytes | None = None
    seal: bool = True
    #: Constant-rate upload (docs/privacy.md): every ``interval_s`` one exchange carries
    #: exactly ``slots`` entries, real or padding, late by a random draw of up to ``jitter``
    #: times the interval.
    paced: bool = True
    slots: int = 4
    jitter: float = 0.05
    queue_bound: int = 240


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    """``[witnesses.<label>]``: a C2SP tlog-witness the gateway submits its checkpoints to
    (docs/audit-log.md, "Witnesses"): the submission prefix and the cosigner's vkey."""

    label: str
    url: str
    vkey: str


@dataclass(frozen=True, slots=True)
class AppConfig:
    """``[app]``: the owner's web app (docs/owner-app.md), served by the API over HTTPS."""

    enabled: bool = True
    #: The host name the app is served under: its WebAuthn relying party ID, so never an IP
    #: address. Passkeys are bound to it: changing it means enrolling the devices again.
    name: str = "localhost"
    session_ttl_s: float = 3600.0
    enroll_ttl_s: float = 600.0


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``[metrics]``: Prometheus metrics on a port of their own (docs/operations.md)."""

    enabled: bool = True
    #: Localhost by default: activity counts are private to the home.
    host: str = "127.0.0.1"
    port: int = 9464


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    directory: Path
    gateway_id: str
    owner_public_key: bytes
    timezone: str
    key_file: Path
    database: Path
    doors: tuple[DoorConfig, ...]
    api: ApiConfig = ApiConfig()
    policy: PolicyConfig = PolicyConfig()
    lock: LockConfig = LockConfig()
    #: Every camera with a URL (none: no camera; camera_live is then false).
    cameras: tuple[CameraConfig, ...] = ()
    cloud: CloudConfig = CloudConfig()
    app: AppConfig = AppConfig()
    metrics: MetricsConfig = MetricsConfig()
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    witnesses: tuple[WitnessConfig, ...] = ()
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    push: PushConfig = field(default_factory=PushConfig)

    @property
    def camera(self) -> CameraConfig:
        """The first camera, or the settings of none (``url`` None)."""
        return self.cameras[0] if self.cameras else CameraConfig()

    def door(self, name: str) -> DoorConfig | None:
        for door in self.doors:
            if door.name == name:
                return door
        return None


# ---------------------------------------------------------------------------------------------


class _Table:
    """A TOML table read key by key; every problem names the dotted key."""

    def __init__(self, prefix: str, data: Mapping[str, Any]) -> None:
        self.prefix = prefix
        self.data = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"threshold.toml: {self.key(name)}: {problem}")

    def _get(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def str_(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._get(name)
        if value is None:
            if required or default is None:
                raise self.fail(name, "is required")
            return default
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {type(value).__name__}")
        return value

    def opt_str(self, name: str) -> str | None:
        value = self._get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {type(value).__name__}")
        return value

    def bool_(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(name, "must be true or false")
        return value

    def int_(self, name: str, default: int, low: int, high: int) -> int:
        value = self._get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, "must be an integer")
        if not low <= value <= high:
            raise self.fail(name, f"must be between {low} and {high}, not {value}")
        return value

    def float_(self, name: str, default: float, low: float, high: float) -> float:
        value = self._get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, "must be a number")
        if not low <= float(value) <= high:
            raise self.fail(name, f"must be between {low:g} and {high:g}, not {value}")
        return float(value)

    def table(self, name: str) -> _Table:
        value = self._get(name)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(name, "must be a table")
        return _Table(self.key(name), value)

    def check_unknown(self) -> None:
        for name in self.data:
            if name not in self.used:
                raise self.fail(name, "is not a known setting (misspelt?)")


def _path(directory: Path, table: _Table, name: str, default: str) -> Path:
    raw = table.str_(name, default)
    if not raw:
        raise table.fail(name, "must not be empty")
    path = Path(raw)
    return path if path.is_absolute() else directory / path


def parse(data: Mapping[str, Any], directory: Path) -> GatewayConfig:
    """Validate a parsed TOML document (relative paths resolve against ``directory``)."""
    root = _Table("", data)

    gw = root.table("gateway")
    gateway_id = gw.str_("id", required=True)
    if not GATEWAY_ID_RE.fullmatch(gateway_id):
        raise gw.fail("id", "must be 1-63 lowercase letters, digits or '-'")
    owner_b64 = gw.str_("owner_public_key", required=True)
    try:
        owner = b64u_decode(owner_b64)
    except ValueError as exc:
        raise gw.fail("owner_public_key", f"is not canonical base64url ({exc})") from None
    if len(owner) != 32:
        raise gw.fail("owner_public_key", f"must be a 32-byte Ed25519 key, not {len(owner)}")
    tz = gw.str_("timezone", DEFAULT_TIMEZONE)
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise gw.fail("timezone", f"{tz!r} is not an IANA time zone") from None
    key_file = _path(directory, gw, "key_file", DEFAULT_KEY_FILE)
    database = _path(directory, gw, "database", DEFAULT_DATABASE)
    gw.check_unknown()

    a = root.table("api")
    d_api = ApiConfig()
    bind = a.str_("bind", f"{d_api.host}:{d_api.port}")
    host, port = parse_bind(bind, a)
    api = ApiConfig(
        host=host,
        port=port,
        tls=a.bool_("tls", d_api.tls),
        tls_cert=_path(directory, a, "tls_cert", str(d_api.tls_cert)),
        tls_key=_path(directory, a, "tls_key", str(d_api.tls_key)),
        max_body_bytes=a.int_("max_body_bytes", d_api.max_body_bytes, 1024, 1024 * 1024),
        client_rate_per_minute=a.int_(
            "client_rate_per_minute", d_api.client_rate_per_minute, 1, 1_000_000
        ),
        ticket_rate_per_minute=a.int_(
            "ticket_rate_per_minute", d_api.ticket_rate_per_minute, 1, 1_000_000
        ),
        owner_skew_s=a.float_("owner_skew_s", d_api.owner_skew_s, 1.0, 3600.0),
        mdns=a.bool_("mdns", d_api.mdns),
    )
    a.check_unknown()

    p = root.table("policy")
    d_policy = PolicyConfig()
    default_open = p.float_("default_open_s", d_policy.default_open_s, 1.0, 3600.0)
    policy = PolicyConfig(
        allow_without_camera=p.bool_("allow_without_camera", d_policy.allow_without_camera),
        approval_timeout_s=p.float_("approval_timeout_s", d_policy.approval_timeout_s, 0.1, 3600.0),
        default_open_s=default_open,
        max_open_s=p.float_("max_open_s", d_policy.max_open_s, default_open, 3600.0),
        challenge_ttl_s=p.float_("challenge_ttl_s", d_policy.challenge_ttl_s, 1.0, 120.0),
        clock_skew_s=p.float_("clock_skew_s", d_policy.clock_skew_s, 0.0, 600.0),
    )
    p.check_unknown()

    lk = root.table("lock")
    d_lock = LockConfig()
    lock = LockConfig(
        timeout_s=lk.float_("timeout_s", d_lock.timeout_s, 0.5, 120.0),
        relock_retry_initial_s=lk.float_(
            "relock_retry_initial_s", d_lock.relock_retry_initial_s, 0.01, 60.0
        ),
        relock_retry_max_s=lk.float_("relock_retry_max_s", d_lock.relock_retry_max_s, 0.01, 3600.0),
    )
    lk.check_unknown()

    cloud = _parse_cloud(root.table("cloud"))
    app = _parse_app(root.table("app"))

    m = root.table("metrics")
    d_metrics = MetricsConfig()
    metrics_host, metrics_port = parse_bind(m.str_("bind", f"{d_metrics.host}:{d_metrics.port}"), m)
    metrics = MetricsConfig(
        enabled=m.bool_("enabled", d_metrics.enabled), host=metrics_host, port=metrics_port
    )
    m.check_unknown()

    mqtt = _parse_mqtt(root.table("mqtt"), directory)
    push = _parse_push(root.table("push"), directory)

    witnesses = _parse_witnesses(root.table("witnesses"))
    remote = _parse_remote(root.table("remote"), directory, cloud, app)
    doors = _parse_doors(root)
    cameras = _parse_cameras(root, directory, doors)
    root.check_unknown()
    return GatewayConfig(
        directory=directory,
        gateway_id=gateway_id,
        owner_public_key=owner,
        timezone=tz,
        key_file=key_file,
        database=database,
        doors=doors,
        api=api,
        policy=policy,
        lock=lock,
        cameras=cameras,
        cloud=cloud,
        app=app,
        metrics=metrics,
        mqtt=mqtt,
        witnesses=witnesses,
        remote=remote,
        push=push,
    )


def _parse_witnesses(t: _Table) -> tuple[WitnessConfig, ...]:
    found: list[WitnessConfig] = []
    for label in list(t.data):
        w = t.table(label)
        url = w.str_("url", required=True)
        if not url.startswith(("https://", "http://127.0.0.1", "http://[::1]")):
            raise w.fail("url", "must be https:// (plain http only to a witness on loopback)")
        vkey = w.str_("vkey", required=True)
        try:
            cosignature.parse_cosigner_vkey(vkey)
        except InvalidEntry as exc:
            raise w.fail("vkey", f"is not a cosigner vkey ({exc.message})") from None
        w.check_unknown()
        found.append(WitnessConfig(label, url, vkey))
    t.check_unknown()
    return tuple(found)


def _parse_cameras(
    root: _Table, directory: Path, doors: tuple[DoorConfig, ...]
) -> tuple[CameraConfig, ...]:
    """``[camera]`` (one camera watching every door) or ``[[camera]]`` (several, each named
    with its doors). A camera without a URL is no camera."""
    raw = root._get("camera")
    if raw is None:
        return ()
    if isinstance(raw, dict):
        camera = _parse_camera(_Table("camera", raw), directory, doors, several=False)
        return () if camera.url is None else (camera,)
    if not isinstance(raw, list) or not raw:
        raise root.fail("camera", "must be a table ([camera]) or an array of tables ([[camera]])")
    cameras: list[CameraConfig] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise root.fail(f"camera[{i}]", "must be a table")
        t = _Table(f"camera[{i}]", item)
        camera = _parse_camera(t, directory, doors, several=True)
        if any(c.name == camera.name for c in cameras):
            raise t.fail("name", f"camera {camera.name!r} is defined twice")
        if any(c.clip_dir == camera.clip_dir for c in cameras):
            raise t.fail("clips", "each camera needs its own directory (its own disk budget)")
        if camera.url is None:
            raise t.fail("url", "is required in a [[camera]] table")
        cameras.append(camera)
    return tuple(cameras)


def _parse_camera(
    c: _Table, directory: Path, doors: tuple[DoorConfig, ...], *, several: bool
) -> CameraConfig:
    d = CameraConfig()
    name = c.str_("name", required=True) if several else c.str_("name", d.name)
    if not CAMERA_NAME_RE.fullmatch(name):
        raise c.fail("name", "must be 1-32 lowercase letters, digits, '-' or '_'")
    watched = c._get("doors")
    if watched is None:
        watched = []
    if not isinstance(watched, list) or not all(isinstance(w, str) for w in watched):
        raise c.fail("doors", 'must be a list of door names, e.g. ["front"]')
    known = {door.name for door in doors}
    for door in watched:
        if door not in known:
            raise c.fail("doors", f"{door!r} is not a [[door]] name")
    transport = c.str_("transport", d.transport)
    if transport not in ("tcp", "udp"):
        raise c.fail("transport", "must be 'tcp' or 'udp'")
    default_clips = f"{DEFAULT_CLIPS}/{name}" if several else DEFAULT_CLIPS
    camera = CameraConfig(
        url=c.opt_str("url"),
        name=name,
        doors=tuple(watched),
        motion_url=c.opt_str("motion_url"),
        transport=transport,
        audio=c.bool_("audio", d.audio),
        clip_dir=_path(directory, c, "clips", default_clips),
        clip_budget_mb=c.int_("clip_budget_mb", d.clip_budget_mb, 1, 10_000_000),
        preroll_s=c.float_("preroll_s", d.preroll_s, 0.0, 30.0),
        post_roll_s=c.float_("post_roll_s", d.post_roll_s, 0.0, 60.0),
        read_timeout_s=c.float_("read_timeout_s", d.read_timeout_s, 0.2, 30.0),
        open_timeout_s=c.float_("open_timeout_s", d.open_timeout_s, 0.5, 60.0),
        max_silence_s=c.float_("max_silence_s", d.max_silence_s, 0.5, 60.0),
        ring_max_mb=c.int_("ring_max_mb", d.ring_max_mb, 1, 1024),
        analyzeduration_us=c.int_("analyzeduration_us", d.analyzeduration_us, 10_000, 10_000_000),
        probesize=c.int_("probesize", d.probesize, 32, 64 * 1024 * 1024),
        motion=c.bool_("motion", d.motion),
        motion_fps=c.float_("motion_fps", d.motion_fps, 0.5, 30.0),
    )
    c.check_unknown()
    return camera


HOST_NAME_RE = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)


def _parse_app(t: _Table) -> AppConfig:
    d = AppConfig()
    name = t.str_("name", d.name)
    if not HOST_NAME_RE.fullmatch(name):
        raise t.fail("name", "must be a lower-case host name (a WebAuthn RP ID, never an IP)")
    if name.replace(".", "").isdigit():
        raise t.fail("name", "must be a host name, not an IP address")
    app = AppConfig(
        enabled=t.bool_("enabled", d.enabled),
        name=name,
        session_ttl_s=t.float_("session_ttl_s", d.session_ttl_s, 60.0, 86_400.0),
        enroll_ttl_s=t.float_("enroll_ttl_s", d.enroll_ttl_s, 60.0, 3_600.0),
    )
    t.check_unknown()
    return app


def _parse_cloud(t: _Table) -> CloudConfig:
    url = t.opt_str("url")
    if url is not None and not url.startswith(("https://", "http://127.0.0.1", "http://[::1]")):
        raise t.fail("url", "must be https:// (plain http only to a relay on loopback)")
    pin_text = t.opt_str("pin_sha256")
    pin: bytes | None = None
    if pin_text is not None:
        try:
            pin = bytes.fromhex(pin_text.replace(":", ""))
        except ValueError:
            raise t.fail("pin_sha256", "is not hex") from None
        if len(pin) != 32:
            raise t.fail("pin_sha256", "must be the 32-byte SHA-256 of the relay certificate")
    relay_text = t.opt_str("relay_public_key")
    relay: bytes | None = None
    if relay_text is not None:
        try:
            relay = b64u_decode(relay_text)
        except ValueError as exc:
            raise t.fail("relay_public_key", f"is not canonical base64url ({exc})") from None
        if len(relay) != 32:
            raise t.fail("relay_public_key", "must be a 32-byte Ed25519 key")
    d_cloud = CloudConfig()
    cloud = CloudConfig(
        url=url,
        interval_s=t.float_("interval_s", d_cloud.interval_s, 0.05, 86400.0),
        pin_sha256=pin,
        relay_public_key=relay,
        seal=t.bool_("seal", d_cloud.seal),
        paced=t.bool_("paced", d_cloud.paced),
        slots=t.int_("slots", d_cloud.slots, 1, 500),
        jitter=t.float_("jitter", d_cloud.jitter, 0.0, 0.5),
        queue_bound=t.int_("queue_bound", d_cloud.queue_bound, 1, 10_000_000),
    )
    if cloud.queue_bound < cloud.slots:
        raise t.fail("queue_bound", "must be at least slots")
    t.check_unknown()
    return cloud


_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _parse_remote(t: _Table, directory: Path, cloud: CloudConfig, app: AppConfig) -> RemoteConfig:
    d = RemoteConfig()
    enabled = t.bool_("enabled", d.enabled)
    name = t.str_("name", d.name)
    domain = t.str_("domain", d.domain)
    acme_ca = t.opt_str("acme_ca_file")
    lan = t.opt_str("lan_bind")
    lan_host, lan_port = (None, d.lan_port) if lan is None else parse_bind(lan, t)
    remote = RemoteConfig(
        enabled=enabled,
        name=name,
        domain=domain,
        acme_directory=t.str_("acme_directory", d.acme_directory),
        acme_ca_file=None if acme_ca is None else str(_path(directory, t, "acme_ca_file", acme_ca)),
        acme_email=t.opt_str("acme_email"),
        renew_fraction=t.float_("renew_fraction", d.renew_fraction, 0.05, 0.9),
        public_port=t.int_("public_port", d.public_port, 1, 65535),
        lan_host=lan_host,
        lan_port=lan_port,
    )
    t.check_unknown()
    if not enabled:
        return remote
    if not _LABEL_RE.fullmatch(name):
        raise t.fail("name", "must be one lower-case DNS label (the name the relay assigned)")
    if not HOST_NAME_RE.fullmatch(domain):
        raise t.fail("domain", "must be the relay's lower-case domain")
    if not remote.acme_directory.startswith("https://"):
        raise t.fail("acme_directory", "must be an https:// ACME directory URL")
    if cloud.url is None:
        raise t.fail("enabled", "needs [cloud] url: the tunnel goes to the gateway's relay")
    if not app.enabled or app.name != remote.host_name:
        # Passkeys are bound to the app's name: one name home and away (docs/remote.md).
        raise t.fail(
            "enabled",
            f'needs the owner app under the remote name: [app] name = "{remote.host_name}"',
        )
    return remote


_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")


def _parse_mqtt(t: _Table, directory: Path) -> MqttConfig:
    d = MqttConfig()
    host = t.opt_str("host")
    port = t.int_("port", d.port, 1, 65535)
    tls = t.bool_("tls", port == 8883)
    ca_text = t.opt_str("ca_file")
    ca_file = None if ca_text is None else _path(directory, t, "ca_file", ca_text)
    username = t.opt_str("username")
    password_text = t.opt_str("password_file")
    password_file = (
        None if password_text is None else _path(directory, t, "password_file", password_text)
    )
    prefix = t.str_("prefix", d.prefix)
    discovery_prefix = t.str_("discovery_prefix", d.discovery_prefix)
    for name, value in (("prefix", prefix), ("discovery_prefix", discovery_prefix)):
        if not _TOPIC_RE.fullmatch(value):
            raise t.fail(name, "must be topic levels of letters, digits, '_' or '-'")
    commands = t.bool_("commands", d.commands)
    t.check_unknown()
    if password_file is not None and username is None:
        raise t.fail("password_file", "needs a username")
    if commands and not (tls and username is not None):
        raise t.fail(
            "commands",
            "needs an authenticated, encrypted broker connection (tls = true and a username)",
        )
    return MqttConfig(
        host=host,
        port=port,
        tls=tls,
        ca_file=ca_file,
        username=username,
        password_file=password_file,
        prefix=prefix,
        discovery_prefix=discovery_prefix,
        commands=commands,
    )


def _parse_push(t: _Table, directory: Path) -> PushConfig:
    d = PushConfig()
    subject = t.str_("subject", d.subject)
    if not SUBJECT_RE.fullmatch(subject):
        raise t.fail("subject", "must be a mailto: address or an https: URL (RFC 8292)")
    ca_text = t.opt_str("ca_file")
    push = PushConfig(
        enabled=t.bool_("enabled", d.enabled),
        subject=subject,
        ttl_s=t.int_("ttl_s", d.ttl_s, 10, 3600),
        ca_file=None if ca_text is None else _path(directory, t, "ca_file", ca_text),
        key_file=_path(directory, t, "key_file", str(d.key_file)),
    )
    t.check_unknown()
    return push


def _parse_doors(root: _Table) -> tuple[DoorConfig, ...]:
    raw = root._get("door")
    if raw is None:
        raise root.fail("door", "at least one [[door]] is required")
    if not isinstance(raw, list) or not raw:
        raise root.fail("door", "must be an array of tables ([[door]])")
    doors: list[DoorConfig] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise root.fail(f"door[{i}]", "must be a table")
        t = _Table(f"door[{i}]", item)
        name = t.str_("name", required=True)
        if not DOOR_NAME_RE.fullmatch(name):
            raise t.fail("name", "must be 1-32 lowercase letters, digits, '-' or '_'")
        if any(d.name == name for d in doors):
            raise t.fail("name", f"door {name!r} is defined twice")
        door = parse_lock_spec(t.str_("lock", required=True), name, t)
        t.check_unknown()
        doors.append(door)
    return tuple(doors)


def parse_lock_spec(spec: str, name: str, table: _Table | None = None) -> DoorConfig:
    """A lock spec the vendor registry knows: ``sim``, ``nuki:AA:BB:CC:DD:EE:FF``, ..."""

    def fail(problem: str) -> ConfigError:
        if table is not None:
            return table.fail("lock", problem)
        return ConfigError(f"door {name}: {problem}")

    kind, colon, address = spec.partition(":")
    vendor = VENDORS.get(kind)
    if vendor is None or vendor.takes_address != bool(colon):
        raise fail(f"{spec!r} is not a lock; use {spec_examples()}")
    if not vendor.takes_address:
        return DoorConfig(name=name, lock=kind)
    if not BLE_ADDRESS_RE.fullmatch(address):
        raise fail(f"{address!r} is not a Bluetooth address (AA:BB:CC:DD:EE:FF)")
    return DoorConfig(name=name, lock=kind, address=address.upper())


def parse_bind(bind: str, table: _Table | None = None) -> tuple[str, int]:
    def fail(problem: str) -> ConfigError:
        if table is not None:
            return table.fail("bind", problem)
        return ConfigError(f"bind: {problem}")

    host, sep, port_text = bind.rpartition(":")
    if not sep or not port_text.isdigit():
        raise fail(f"{bind!r} must be HOST:PORT")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise fail(f"port {port} is out of range")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise fail(f"{host!r} must be an IP address") from None
    return host, port


def load(path: Path) -> GatewayConfig:
    """Read and validate threshold.toml."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse(data, path.resolve().parent)


TEMPLATE = """\
# Threshold gateway configuration. Every key below shows its default where it has one.
# Secrets are never written here: key_file and tls_key name files (mode 0600).
# Relative paths are relative to this file's directory.

[gateway]
# This gateway's identity: tickets carry it in "aud" and open this gateway only.
id = {gateway_id}
# The owner's Ed25519 public key (base64url): the only root of trust.
owner_public_key = {owner_pub}
# IANA time zone in which ticket schedules are evaluated (DST included). Default "UTC".
timezone = {timezone}
# The gateway's Ed25519 secret key (signs checkpoints and receipts). Default "gateway.key".
key_file = "gateway.key"
# The SQLite database: audit log and state. Default "threshold.db".
database = "threshold.db"

[api]
# Where the LAN API listens. Default "127.0.0.1:8443".
bind = {bind}
# HTTPS with the self-signed certificate below. Plain HTTP only if set to false. Default true.
tls = true
tls_cert = "tls.crt"
tls_key = "tls.key"
# Request bodies above this are refused with 413. Default 16384.
max_body_bytes = 16384
# Requests per minute per client address, and presentations per minute per ticket id.
client_rate_per_minute = 120
ticket_rate_per_minute = 20
# Owner request signatures are accepted within this many seconds of the gateway's clock.
owner_skew_s = 120
# Advertise the API on the LAN as _threshold._tcp.local. Default true.
mdns = true

[policy]
# Let tickets with camera = "required" open when no camera is live. Default false.
allow_without_camera = {allow_without_camera}
# How long a survey (or any ticket needing the owner) waits for approval. Default 300.
approval_timeout_s = 300
# How long the door stays unlocked when the ticket has no open_s; and the cap. 60 / 900.
default_open_s = 60
max_open_s = 900
# How long a challenge nonce stays valid. Default 10.
challenge_ttl_s = 10
# Clock skew tolerated around the time floor and ticket times. Default 120.
clock_skew_s = 120

[lock]
# How long the gateway waits for one lock operation before reading the lock instead.
# Never less than the driver's own budget (so a driver is not cut off mid-report). 10.
timeout_s = 10
# A failed relock is retried with exponential backoff between these bounds. 1 / 30.
relock_retry_initial_s = 1
relock_retry_max_s = 30

# One camera watching every door. Several cameras: replace this table with one [[camera]]
# per camera, each with a name, its url and the doors it watches (docs/camera.md).
[camera]
# RTSP URL of the entrance camera (or a local video file, played in a loop, for a demo).
# Empty: no camera (camera_live is then false).
url = {camera_url}
# Its name (audit entries, the live view's ?camera=) and the doors it watches ([]: all).
name = "camera"
doors = []
# The camera's low-resolution substream, if any: motion decodes it instead (not set: none).
# motion_url = "rtsp://camera.lan/substream"
# RTSP over "tcp" or "udp" (a camera that offers only UDP). Default "tcp".
transport = "tcp"
# Record the camera's audio with the video. false where the law forbids it. true.
audio = true
# Where clips and snapshots go (relative to this directory), and their disk budget in MB.
clips = "clips"
clip_budget_mb = 2048
# Seconds of video kept before the unlock and recorded after the session ends. 5 / 5.
preroll_s = 5
post_roll_s = 5
# One read may block this long (s); a stream that stalls relocks open doors early. 2.
read_timeout_s = 2
# Seconds to connect. 5.
open_timeout_s = 5
# Longest silence (s) ever taken for a live camera, whatever its keyframe interval. 4.
max_silence_s = 4
# Memory for the pre-roll, in MB (a hard limit whatever the bitrate). 32.
ring_max_mb = 32
# How long (microseconds) and how many bytes FFmpeg probes a new stream. 500000 / 262144.
analyzeduration_us = 500000
probesize = 262144
# Motion detection (facts stored with grants and relocks), and pictures analysed per s.
motion = true
motion_fps = 4

[cloud]
# Sync to a relay (docs/cloud.md). No url: no sync, the gateway stays fully local.
# url = "https://relay.example:8443"
# pin_sha256 = "<hex SHA-256 of the relay's certificate>"
# relay_public_key = "<the relay's Ed25519 key, base64url>"
# Seconds between upload slots. 60. Uploads are paced (docs/privacy.md): every interval one
# exchange carries exactly `slots` entries, real ones or padding only the owner can tell
# apart, so the relay sees the same thing on a quiet day and a busy one. About 7.7 MB a day
# at the defaults; the queue's delay shows in `threshold status`.
interval_s = 60.0
# Entries per slot. 4. Real entries beyond it wait for the next slots.
slots = 4
# Random delay of each exchange after its slot's time, as a fraction of interval_s. 0.05.
jitter = 0.05
# Entries waiting past which `threshold status` warns (the upload stays paced). 240.
queue_bound = 240
# false: upload every entry at the next round instead (the relay then sees how many).
paced = true
# Seal every audit entry to the owner's key from the first one, relay or not, so the log can
# go to a relay later unchanged (docs/audit-log.md, "Leaves, and sealing"). true.
seal = true

# Standard C2SP witnesses (tlog-witness) to cosign the log's checkpoints, one table each:
# the witness's submission prefix and its cosigner vkey (docs/audit-log.md, "Witnesses").
# The reference relay is one: `GET <relay>/v1/witness` shows its vkey.
# [witnesses.relay]
# url = "https://relay.example:8443/v1/witness"
# vkey = "relay:<key>+<hex key ID>+<base64>"

[metrics]
# Prometheus metrics at http://BIND/metrics (docs/operations.md). Activity counts are
# private: keep it on localhost unless a scraper elsewhere needs it. true / "127.0.0.1:9464".
enabled = true
bind = "127.0.0.1:9464"

[mqtt]
# Home Assistant over MQTT (docs/operations.md): off until host is set. The password is read
# from a file (mode 0600). Lock and unlock from Home Assistant stay off unless
# commands = true, which needs tls = true and a username.
# host = "192.168.1.10"
port = 1883
# TLS to the broker: on by default when port = 8883.
# tls = true
# ca_file = "broker-ca.pem"
# username = "threshold"
# password_file = "mqtt-password"
prefix = "threshold"
discovery_prefix = "homeassistant"
commands = false

[app]
# The owner's web app at https://NAME:PORT/app/ (docs/owner-app.md). true.
enabled = true
# The host name the app is served under (its passkeys are bound to it; never an IP address).
# "localhost" on the gateway itself; the gateway's LAN or remote name otherwise.
name = "localhost"
# A signed-in session lasts this long (s); an enrollment link this long. 3600 / 600.
session_ttl_s = 3600
enroll_ttl_s = 600

[remote]
# Reach from anywhere through the relay (docs/remote.md): an outbound tunnel to [cloud] url,
# TLS ending here with a certificate for NAME.DOMAIN from ACME (DNS-01 via the relay). Off
# unless enabled; then [app] name must be NAME.DOMAIN. false.
enabled = false
# The name the relay's operator assigned to this gateway, and the relay's domain.
name = ""
domain = ""
acme_directory = "https://acme-v02.api.letsencrypt.org/directory"
# acme_ca_file = "acme-ca.pem"
# acme_email = "owner@example.org"
# Renew when less than this fraction of the certificate's lifetime is left. 0.3.
renew_fraction = 0.3
# The port browsers use on the relay. 443.
public_port = 443
# The app on the home network under the same name, with the same certificate (the router's
# DNS then points NAME.DOMAIN at this gateway). Off unless set.
# lan_bind = "0.0.0.0:443"

[push]
# Web Push to the owner's devices that subscribe in the app (docs/owner-app.md,
# "Notifications"): padded, encrypted end to end, signed with the VAPID key below. true.
enabled = true
# How a push service reaches whoever runs this gateway (RFC 8292 "sub"): mailto: or https:.
subject = "mailto:owner@threshold.invalid"
# A push older than this (s) is dropped, never sent late; also the push service's TTL. 300.
ttl_s = 300
# The VAPID key (P-256, PEM, mode 0600), made at init or first start. "vapid.key".
key_file = "vapid.key"
# Extra CA certificates trusted for push services besides the system's (a private one).
# ca_file = "push-ca.pem"

# One [[door]] per lock. lock = "sim" (the virtual Nuki lock), "sim-switchbot" (the virtual
# SwitchBot Lock), "nuki:AA:BB:CC:DD:EE:FF" or "switchbot:AA:BB:CC:DD:EE:FF".
{doors}"""


def render(
    *,
    gateway_id: str,
    owner_pub: str,
    timezone: str,
    bind: str,
    doors: tuple[DoorConfig, ...],
    camera_url: str | None,
    allow_without_camera: bool,
) -> str:
    # JSON string literals are valid TOML basic strings: quoting stays correct for any value.
    q = json.dumps
    door_text = "".join(
        f"[[door]]\nname = {q(d.name)}\nlock = {q(d.lock_spec)}\n\n" for d in doors
    ).rstrip("\n")
    return TEMPLATE.format(
        gateway_id=q(gateway_id),
        owner_pub=q(owner_pub),
        timezone=q(timezone),
        bind=q(bind),
        doors=door_text + "\n",
        camera_url=q(camera_url or ""),
        allow_without_camera="true" if allow_without_camera else "false",
    )
