"""threshold.toml validation and threshold init: one clear message per bad value, nothing
overwritten, secrets only in 0600 files."""

from __future__ import annotations

import dataclasses
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from gateway.app.config import (
    DEFAULT_CLIPS,
    DEFAULT_DATABASE,
    DEFAULT_KEY_FILE,
    DEFAULT_TIMEZONE,
    TEMPLATE,
    ApiConfig,
    AppConfig,
    CameraConfig,
    CloudConfig,
    DoorConfig,
    LockConfig,
    MetricsConfig,
    PolicyConfig,
    load,
    parse,
    render,
)
from gateway.app.identity import KeyFileError, load_signing_key
from gateway.app.provision import init_gateway, parse_door_arg
from gateway.app.tls import tls_fingerprint
from gateway.errors import ConfigError, UsageError
from gateway.mqtt.settings import MqttConfig
from gateway.push.settings import PushConfig
from gateway.remote.settings import RemoteConfig
from gateway.trust.base64url import b64u_encode

OWNER = b64u_encode(bytes(SigningKey.generate().verify_key))


def base(**changes: object) -> dict[str, object]:
    text = render(
        gateway_id="gw-1",
        owner_pub=OWNER,
        timezone="Europe/London",
        bind="127.0.0.1:8443",
        doors=(DoorConfig("front", "sim"), DoorConfig("back", "nuki", "AA:BB:CC:DD:EE:FF")),
        camera_url=None,
        allow_without_camera=False,
    )
    return tomllib.loads(text)


def test_rendered_template_loads_with_documented_defaults(tmp_path: Path) -> None:
    cfg = parse(base(), tmp_path)
    assert cfg.gateway_id == "gw-1"
    assert cfg.timezone == "Europe/London"
    assert [d.lock_spec for d in cfg.doors] == ["sim", "nuki:AA:BB:CC:DD:EE:FF"]
    assert cfg.api.tls is True
    assert cfg.api.max_body_bytes == 16384
    assert cfg.policy.allow_without_camera is False
    assert cfg.policy.approval_timeout_s == 300
    assert cfg.key_file == tmp_path / "gateway.key"
    assert cfg.camera.url is None
    # Every setting the loader knows is documented in the template.
    for key in (
        "client_rate_per_minute",
        "ticket_rate_per_minute",
        "owner_skew_s",
        "mdns",
        "challenge_ttl_s",
        "clock_skew_s",
        "relock_retry_max_s",
        "max_open_s",
    ):
        assert f"{key} =" in TEMPLATE


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("gateway", "id", "Not An Id", "gateway.id"),
        ("gateway", "owner_public_key", "abc", "gateway.owner_public_key"),
        ("gateway", "timezone", "Mars/Olympus", "gateway.timezone"),
        ("api", "bind", "localhost", "api.bind"),
        ("api", "tls", "yes", "api.tls: must be true or false"),
        ("api", "max_body_bytes", 10, "api.max_body_bytes: must be between"),
        ("policy", "approval_timeout_s", "soon", "policy.approval_timeout_s: must be a number"),
        ("policy", "allow_without_camra", True, "policy.allow_without_camra: is not a known"),
        ("lock", "timeout_s", -1, "lock.timeout_s"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, section: str, key: str, value: object, message: str
) -> None:
    data = base()
    data[section][key] = value  # type: ignore[index]
    with pytest.raises(ConfigError) as info:
        parse(data, tmp_path)
    assert message in info.value.message
    assert info.value.message.count("\n") == 0


def test_bad_doors(tmp_path: Path) -> None:
    data = base()
    data["door"] = [{"name": "front", "lock": "sim"}, {"name": "front", "lock": "sim"}]
    with pytest.raises(ConfigError, match=r"door\[1\].name: door 'front' is defined twice"):
        parse(data, tmp_path)
    data["door"] = [{"name": "front", "lock": "yale:1"}]
    with pytest.raises(ConfigError, match=r"door\[0\].lock"):
        parse(data, tmp_path)
    del data["door"]
    with pytest.raises(ConfigError, match="at least one"):
        parse(data, tmp_path)


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


def test_init_creates_everything_with_safe_modes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    d = tmp_path / "gw"
    result = init_gateway(
        d,
        owner_pub=OWNER,
        gateway_id="gw-x",
        timezone="America/New_York",
        doors=(parse_door_arg("front=sim"),),
        bind="127.0.0.1:9443",
    )
    for name, mode in (("gateway.key", 0o600), ("tls.key", 0o600), ("threshold.db", 0o600)):
        assert stat.S_IMODE((d / name).stat().st_mode) == mode, name
    cfg = load(result.config_path)
    assert cfg.gateway_id == "gw-x"
    assert cfg.api.port == 9443
    key = load_signing_key(cfg.key_file)
    assert b64u_encode(bytes(key.verify_key)) == result.public_key
    assert result.tls_fingerprint == tls_fingerprint(d / "tls.crt")
    toml_text = (d / "threshold.toml").read_text()
    assert (d / "gateway.key").read_text().strip() not in toml_text
    assert "PRIVATE KEY" not in toml_text
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    with pytest.raises(UsageError, match="refusing to overwrite"):
        init_gateway(d, owner_pub=OWNER)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_init_rejects_bad_input_before_writing(tmp_path: Path) -> None:
    d = tmp_path / "gw"
    with pytest.raises(UsageError):
        init_gateway(d, owner_pub="not-a-key")
    with pytest.raises(UsageError, match="time zone"):
        init_gateway(d, owner_pub=OWNER, timezone="Nowhere/Land")
    with pytest.raises(UsageError):
        parse_door_arg("front")
    with pytest.raises(UsageError):
        parse_door_arg("front=nuki:zz")
    assert not d.exists() or not any(d.iterdir())


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "gw"
    init_gateway(d, owner_pub=OWNER)
    (d / "gateway.key").chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_signing_key(d / "gateway.key")


def _template_document(**changes: object) -> dict[str, Any]:
    d_api = ApiConfig()
    values: dict[str, Any] = {
        "gateway_id": "gw-1",
        "owner_pub": OWNER,
        "timezone": DEFAULT_TIMEZONE,
        "bind": f"{d_api.host}:{d_api.port}",
        "doors": (DoorConfig("front", "sim"),),
        "camera_url": None,
        "allow_without_camera": PolicyConfig().allow_without_camera,
    }
    values.update(changes)
    return tomllib.loads(render(**values))


# Template keys that are not a dataclass field of the same name, and what they stand for.
_RENAMED: dict[tuple[str, str], Callable[[], object]] = {
    ("api", "bind"): lambda: f"{ApiConfig().host}:{ApiConfig().port}",
    ("metrics", "bind"): lambda: f"{MetricsConfig().host}:{MetricsConfig().port}",
    ("camera", "clips"): lambda: DEFAULT_CLIPS,
    ("gateway", "timezone"): lambda: DEFAULT_TIMEZONE,
    ("gateway", "key_file"): lambda: DEFAULT_KEY_FILE,
    ("gateway", "database"): lambda: DEFAULT_DATABASE,
}
# Keys whose template value is the operator's answer to `threshold init`, not a default.
_ANSWERS = {
    ("gateway", "id"),
    ("gateway", "owner_public_key"),
    ("camera", "url"),
    # No default value: shown commented out.
    ("camera", "motion_url"),
    ("cloud", "url"),
    ("cloud", "pin_sha256"),
    ("cloud", "relay_public_key"),
    ("mqtt", "host"),
    ("mqtt", "tls"),  # its default follows the port
    ("mqtt", "ca_file"),
    ("mqtt", "username"),
    ("mqtt", "password_file"),
    ("remote", "acme_ca_file"),
    ("remote", "acme_email"),
    ("push", "ca_file"),
}
_DEFAULTS: dict[str, object] = {
    "api": ApiConfig(),
    "policy": PolicyConfig(),
    "lock": LockConfig(),
    "camera": CameraConfig(),
    "app": AppConfig(),
    "cloud": CloudConfig(),
    "metrics": MetricsConfig(),
    "mqtt": MqttConfig(),
    "remote": RemoteConfig(),
    "push": PushConfig(),
}


def test_every_value_in_the_template_is_the_dataclass_default() -> None:
    doc = _template_document()
    compared = 0
    for table, keys in doc.items():
        if table == "door":
            continue
        for key, shown in keys.items():
            if (table, key) in _ANSWERS:
                continue
            if (table, key) in _RENAMED:
                default = _RENAMED[table, key]()
            else:
                default = getattr(_DEFAULTS[table], key)
            if isinstance(default, Path):
                default = str(default)
            if isinstance(default, tuple):
                default = list(default)  # TOML arrays are lists
            assert shown == default, f"[{table}] {key} = {shown!r} in the template, {default!r}"
            compared += 1
    assert compared >= 25


def test_every_dataclass_default_is_shown_in_the_template() -> None:
    doc = _template_document()
    renamed_fields = {
        ("api", "host"),
        ("api", "port"),
        ("camera", "clip_dir"),
        ("metrics", "host"),
        ("metrics", "port"),
        ("remote", "lan_host"),  # lan_bind, shown commented out (off by default)
        ("remote", "lan_port"),
    }
    for table, default in _DEFAULTS.items():
        for f in dataclasses.fields(default):  # type: ignore[arg-type]
            if (table, f.name) in renamed_fields or (table, f.name) in _ANSWERS:
                continue
            assert f.name in doc[table], f"[{table}] {f.name} is missing from the template"


def test_the_parser_defaults_are_the_templates(tmp_path: Path) -> None:
    # A file with only the required keys means the same as the full commented template.
    minimal = {
        "gateway": {"id": "gw-1", "owner_public_key": OWNER},
        "door": [{"name": "front", "lock": "sim"}],
    }
    assert parse(minimal, tmp_path) == parse(_template_document(), tmp_path)
    assert parse(minimal, tmp_path).cloud == CloudConfig()


def test_one_camera_table_watches_every_door_and_has_every_reader_setting(tmp_path: Path) -> None:
    data = base()
    data["camera"] = {"url": "rtsp://cam/1", "transport": "udp", "motion_url": "rtsp://cam/2"}
    data["camera"]["audio"] = False
    (camera,) = parse(data, tmp_path).cameras
    assert (camera.name, camera.doors, camera.watches("front")) == ("camera", (), True)
    assert (camera.transport, camera.motion_url, camera.audio) == ("udp", "rtsp://cam/2", False)
    assert camera.clip_dir == tmp_path / DEFAULT_CLIPS
    data["camera"]["transport"] = "http"
    with pytest.raises(ConfigError, match=r"camera.transport: must be 'tcp' or 'udp'"):
        parse(data, tmp_path)


def test_several_cameras_are_named_with_the_doors_they_watch(tmp_path: Path) -> None:
    data = base()
    data["door"] = [{"name": "front", "lock": "sim"}, {"name": "back", "lock": "sim"}]
    data["camera"] = [
        {"name": "porch", "url": "rtsp://a/1", "doors": ["front"]},
        {"name": "yard", "url": "rtsp://b/1", "doors": ["back", "front"]},
    ]
    cfg = parse(data, tmp_path)
    assert [(c.name, c.doors) for c in cfg.cameras] == [
        ("porch", ("front",)),
        ("yard", ("back", "front")),
    ]
    assert [c.clip_dir for c in cfg.cameras] == [
        tmp_path / DEFAULT_CLIPS / "porch",
        tmp_path / DEFAULT_CLIPS / "yard",
    ]
    assert cfg.camera.name == "porch"
    for bad, message in (
        ({"name": "porch", "url": "rtsp://c/1"}, r"camera\[2\].name: camera 'porch' is defined"),
        ({"name": "attic", "url": "rtsp://c/1", "doors": ["attic"]}, r"'attic' is not a"),
        ({"name": "attic", "url": "rtsp://c/1", "doors": "front"}, r"must be a list"),
        ({"name": "attic"}, r"camera\[2\].url: is required"),
        ({"url": "rtsp://c/1"}, r"camera\[2\].name: is required"),
        ({"name": "attic", "url": "rtsp://c/1", "clips": "clips/porch"}, r"its own directory"),
        ({"name": "Attic", "url": "rtsp://c/1"}, r"lowercase"),
        ({"name": "attic", "url": "rtsp://c/1", "trasport": "udp"}, r"not a known setting"),
    ):
        data["camera"] = [*data["camera"][:2], bad]
        with pytest.raises(ConfigError, match=message):
            parse(data, tmp_path)


def test_mqtt_settings(tmp_path: Path) -> None:
    assert not parse(base(), tmp_path).mqtt.enabled
    data = base()
    data["mqtt"] = {"host": "broker.lan", "port": 8883, "username": "gw"}
    mqtt = parse(data, tmp_path).mqtt
    assert mqtt.enabled
    assert mqtt.tls  # on by default on 8883
    data["mqtt"] = {"host": "broker.lan", "port": 8883, "tls": False}
    assert not parse(data, tmp_path).mqtt.tls
    data["mqtt"] = {"host": "broker.lan", "password_file": "pw"}
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: needs a username"):
        parse(data, tmp_path)
    data["mqtt"] = {"host": "broker.lan", "prefix": "threshold/#"}
    with pytest.raises(ConfigError, match=r"mqtt\.prefix"):
        parse(data, tmp_path)
    data["mqtt"] = {"host": "broker.lan", "port": 8883, "commands": True}
    with pytest.raises(ConfigError, match=r"mqtt\.commands: needs an authenticated"):
        parse(data, tmp_path)


def test_the_witnesses_table_is_validated(tmp_path: Path) -> None:
    from store import cosignature, note

    vkey = cosignature.verifier("witness.example/w1", bytes(range(32))).vkey()
    good = {**base(), "witnesses": {"w1": {"url": "https://witness.example/w", "vkey": vkey}}}
    cfg = parse(good, tmp_path)
    assert [(w.label, w.url, w.vkey) for w in cfg.witnesses] == [
        ("w1", "https://witness.example/w", vkey)
    ]
    assert parse(base(), tmp_path).witnesses == ()
    ed25519 = note.ed25519_verifier("witness.example/w1", bytes(range(32))).vkey()
    for bad, problem in [
        ({"url": "https://w.example", "vkey": ed25519}, "witnesses.w1.vkey"),
        ({"url": "http://w.example", "vkey": vkey}, "witnesses.w1.url"),
        ({"url": "https://w.example", "vkey": vkey, "extra": 1}, "witnesses.w1.extra"),
        ({"vkey": vkey}, "witnesses.w1.url"),
        ({"url": "https://w.example", "vkey": vkey[:-2]}, "witnesses.w1.vkey"),
    ]:
        with pytest.raises(ConfigError, match=problem):
            parse({**base(), "witnesses": {"w1": bad}}, tmp_path)


def test_remote_settings(tmp_path: Path) -> None:
    assert not parse(base(), tmp_path).remote.enabled
    data = base()
    data["cloud"] = {"url": "https://relay.example"}
    data["app"] = {"name": "home.relay.example"}
    data["remote"] = {"enabled": True, "name": "home", "domain": "relay.example"}
    remote = parse(data, tmp_path).remote
    assert remote.host_name == "home.relay.example"
    assert remote.origin == "https://home.relay.example"
    assert remote.lan_origin is None
    data["remote"] = {**data["remote"], "lan_bind": "0.0.0.0:8443"}
    assert parse(data, tmp_path).remote.lan_origin == "https://home.relay.example:8443"
    # Fail closed: one name for the app home and away, a relay to tunnel to, a DNS label.
    data["app"] = {"name": "localhost"}
    with pytest.raises(ConfigError, match=r'\[app\] name = "home.relay.example"'):
        parse(data, tmp_path)
    data["app"] = {"name": "home.relay.example"}
    data["cloud"] = {}
    with pytest.raises(ConfigError, match=r"needs \[cloud\] url"):
        parse(data, tmp_path)
    data["cloud"] = {"url": "https://relay.example"}
    data["remote"] = {"enabled": True, "name": "Home_1", "domain": "relay.example"}
    with pytest.raises(ConfigError, match=r"remote\.name"):
        parse(data, tmp_path)
    data["remote"] = {"enabled": True, "name": "home", "domain": "relay.example", "x": 1}
    with pytest.raises(ConfigError, match="x"):
        parse(data, tmp_path)
