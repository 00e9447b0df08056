"""Home Assistant over MQTT (issue 18; docs/operations.md "Home Assistant over MQTT"), against
a real Mosquitto broker with TLS and a password file, and a stand-in for Home Assistant's MQTT
side (tests/support/home_assistant.py).

Discovery is checked against the options Home Assistant documents for each platform
(tests/data/ha_mqtt_discovery.json); states and events after a courier's visit; the last will
of a killed gateway and the goodbye of a stopped one; re-announcement on Home Assistant's
birth message; commands refused while off, and recorded as the owner's act naming the broker
identity when on; a broker that goes away while a courier opens the door.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ble.driver import LockState
from gateway.app.file_modes import SecretFileExposed
from gateway.clients.lan import ApiProblem
from gateway.errors import ConfigError
from gateway.trust.ticket import Camera as TicketCamera
from gateway.trust.ticket import Purpose
from tests.support.cli import run_cli
from tests.support.home_assistant import HomeAssistant, home_assistant, retained
from tests.support.mosquitto import PASSWORD, USER, Broker, running_broker
from tests.support.process import threshold_run
from tests.support.rtsp import RtspTestServer, rtsp_server, rtsp_server_factory
from tests.support.service import (
    GATEWAY_ID,
    GatewayHarness,
    Keys,
    make_gateway_dir,
    running_harness,
    set_config,
    start_gateway,
)

__all__ = ["rtsp_server", "rtsp_server_factory"]  # fixtures, imported for pytest

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "ha_mqtt_discovery.json").read_text())
BASE = f"threshold/{GATEWAY_ID}"
DOOR = f"{BASE}/door/front"
DISCOVERY = f"homeassistant/device/threshold_{GATEWAY_ID}/config"


def mqtt_settings(broker: Broker, *, tls: bool = True, commands: bool = False) -> str:
    lines = [
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {broker.tls_port if tls else broker.port}",
        f"tls = {str(tls).lower()}",
        f"commands = {str(commands).lower()}",
    ]
    if tls:
        lines += [
            f'ca_file = "{broker.ca_file}"',
            f'username = "{USER}"',
            'password_file = "mqtt-password"',
        ]
    return "\n".join(lines) + "\n"


def enable_mqtt(
    broker: Broker, *, tls: bool = True, commands: bool = False
) -> Callable[[Path], None]:
    """A ``configure`` for the harness: replace the template's [mqtt] table."""

    def configure(config: Path) -> None:
        text = config.read_text()
        start = text.index("[mqtt]")
        end = text.index("\n# One [[door]]", start)
        config.write_text(
            text[:start] + mqtt_settings(broker, tls=tls, commands=commands) + text[end:]
        )
        secret = config.with_name("mqtt-password")
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o600)

    return configure


@asynccontextmanager
async def gateway_with_ha(
    tmp_path: Path, *, tls: bool = True, commands: bool = False
) -> AsyncIterator[tuple[Broker, HomeAssistant, GatewayHarness]]:
    async with (
        running_broker(tmp_path / "broker") as broker,
        home_assistant(broker) as ha,
        running_harness(
            tmp_path / "gw", configure=enable_mqtt(broker, tls=tls, commands=commands)
        ) as h,
    ):
        yield broker, ha, h


def check_against_schema(document: dict[str, Any]) -> None:
    """Every key Home Assistant requires is there; every other key is one it documents."""
    for part, spec in (
        ("document", SCHEMA["document"]),
        ("dev", SCHEMA["device"]),
        ("o", SCHEMA["origin"]),
    ):
        body = document if part == "document" else document[part]
        for key in spec.get("required", []):
            assert key in body, f"{part}: {key} is required"
        if "required_one_of" in spec:
            assert any(k in body for k in spec["required_one_of"]), part
        allowed = set(spec["allowed"]) | set(spec.get("required", []))
        if part == "document":
            allowed |= {"dev", "o", "cmps"}
        assert set(body) <= allowed, f"{part}: undocumented {set(body) - allowed}"
    common = SCHEMA["component_common"]
    for name, component in document["cmps"].items():
        platform = SCHEMA["platforms"][component["p"]]
        for key in [*common["required"], *platform.get("required", [])]:
            assert key in component, f"{name}: {key} is required"
        if "required_one_of" in platform:
            assert any(k in component for k in platform["required_one_of"]), name
        allowed = set(common["allowed"]) | set(platform["allowed"])
        assert set(component) <= allowed, f"{name}: undocumented {set(component) - allowed}"
        if "device_class" in component and "device_classes" in platform:
            assert component["device_class"] in platform["device_classes"], name
        for topic_key in ("state_topic", "command_topic", "image_topic"):
            if topic_key in component:
                assert "#" not in component[topic_key]
                assert "+" not in component[topic_key]


def audit_rows(h: GatewayHarness, kind: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{h.gateway.config.database}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT body FROM audit_entry WHERE kind = ?", (kind,)).fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]


async def test_discovery_is_what_home_assistant_documents(tmp_path: Path) -> None:
    async with gateway_with_ha(tmp_path) as (broker, ha, _h):
        config = await ha.wait_for(DISCOVERY, lambda p: p != b"")
        assert (await retained(broker, DISCOVERY)).payload == config.payload
        document = json.loads(config.payload)
        check_against_schema(document)
        cmps = document["cmps"]
        assert cmps["front_lock"]["p"] == "lock"
        assert cmps["front_door"]["device_class"] == "door"
        assert cmps["front_battery"]["device_class"] == "battery"
        assert cmps["alarm"]["device_class"] == "problem"
        assert set(cmps["front_visit"]["event_types"]) == {
            "courier_entry",
            "service_entry",
            "guest_entry",
            "survey_entry",
            "emergency_entry",
            "denied",
            "awaiting_approval",
        }
        assert document["availability_topic"] == f"{BASE}/availability"
        # All unique ids differ (Home Assistant drops a repeated one).
        ids = [c["unique_id"] for c in cmps.values()]
        assert len(ids) == len(set(ids))
        await ha.wait_for(f"{BASE}/availability", lambda p: p == b"online")
        assert (await retained(broker, f"{BASE}/availability")).payload == b"online"
        # The lock's state from the read at start, retained.
        await ha.wait_for(f"{DOOR}/lock", lambda p: p == b"LOCKED")
        assert (await retained(broker, f"{DOOR}/lock")).payload == b"LOCKED"


async def test_a_courier_visit_shows_as_states_and_an_event(tmp_path: Path) -> None:
    async with gateway_with_ha(tmp_path) as (_broker, ha, h):
        await ha.wait_for(f"{DOOR}/lock", lambda p: p == b"LOCKED")
        mark = ha.mark()
        t = h.ticket(package_codes=("A",), subject="courier-17")
        opened = await h.open(t, package_code="A")
        session = opened.body["session"]
        visit = await ha.wait_for(f"{DOOR}/visit", after=mark)
        event = json.loads(visit.payload)
        assert not visit.retain
        assert event == {
            "event_type": "courier_entry",
            "who": "courier-17",
            "purpose": "delivery",
            "session": session,
        }
        await ha.wait_for(f"{DOOR}/lock", lambda p: p == b"UNLOCKED", after=mark)
        h.sim.lock.open_door()
        await ha.wait_for(f"{DOOR}/lock", lambda p: p == b"OPEN", after=mark)
        await ha.wait_for(f"{DOOR}/contact", lambda p: p == b"ON", after=mark)
        h.sim.lock.close_door()
        await ha.wait_for(f"{DOOR}/contact", lambda p: p == b"OFF", after=mark)
        await h.done(t, session)
        await ha.wait_for(f"{DOOR}/lock", lambda p: p == b"LOCKED", after=mark)
        await h.wait_session(session, "closed")
        battery = await ha.wait_for(f"{DOOR}/battery")
        assert 0 < int(battery.payload) <= 100
        # A refusal is an event too, naming no one.
        refused_mark = ha.mark()
        with pytest.raises(ApiProblem, match="uses"):
            await h.open(t, package_code="A")
        denied = json.loads((await ha.wait_for(f"{DOOR}/visit", after=refused_mark)).payload)
        assert denied["event_type"] == "denied"
        assert denied["reason"] == "uses_exhausted"
        assert "who" not in denied
        # Nothing on the wire carries the ticket or its id.
        wire = b"".join(m.payload for m in ha.received)
        assert t.jti.encode() not in wire
        assert t.token[:40].encode() not in wire


async def test_home_assistants_birth_makes_the_gateway_announce_again(tmp_path: Path) -> None:
    async with gateway_with_ha(tmp_path) as (_broker, ha, _h):
        await ha.wait_for(DISCOVERY)
        await ha.wait_for(f"{DOOR}/lock", lambda p: p == b"LOCKED")
        mark = ha.mark()
        await ha.birth()
        again = await ha.wait_for(DISCOVERY, lambda p: p != b"", after=mark)
        check_against_schema(json.loads(again.payload))
        await ha.wait_for(f"{BASE}/availability", lambda p: p == b"online", after=mark)
        await ha.wait_for(f"{DOOR}/lock", lambda p: p == b"LOCKED", after=mark)


async def test_a_stopped_gateway_says_offline(tmp_path: Path) -> None:
    async with running_broker(tmp_path / "broker") as broker, home_assistant(broker) as ha:
        async with running_harness(tmp_path / "gw", configure=enable_mqtt(broker)) as h:
            assert h.gateway.mqtt is not None
            await ha.wait_for(f"{BASE}/availability", lambda p: p == b"online")
            mark = ha.mark()
        await ha.wait_for(f"{BASE}/availability", lambda p: p == b"offline", after=mark)
        assert (await retained(broker, f"{BASE}/availability")).payload == b"offline"


async def test_a_killed_gateway_leaves_its_last_will(tmp_path: Path) -> None:
    async with running_broker(tmp_path / "broker") as broker, home_assistant(broker) as ha:
        config = await make_gateway_dir(tmp_path / "gw", Keys())
        set_config(config, "metrics", "enabled", "false")
        enable_mqtt(broker)(config)
        async with threshold_run(config, tmp_path / "gw.log") as (proc, _url):
            await ha.wait_for(f"{BASE}/availability", lambda p: p == b"online")
            mark = ha.mark()
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await ha.wait_for(f"{BASE}/availability", lambda p: p == b"offline", after=mark)
            assert (await retained(broker, f"{BASE}/availability")).payload == b"offline"


async def test_commands_are_refused_while_the_owner_has_not_turned_them_on(
    tmp_path: Path,
) -> None:
    async with gateway_with_ha(tmp_path) as (_broker, ha, h):
        await ha.wait_for(f"{BASE}/availability", lambda p: p == b"online")
        mark = ha.mark()
        await ha.send(f"{DOOR}/lock/set", b"UNLOCK")
        answer = await ha.wait_for(f"{DOOR}/lock/set/result", after=mark)
        assert json.loads(answer.payload) == {
            "command": "UNLOCK",
            "result": "refused",
            "reason": "commands_disabled",
        }
        assert h.sim.lock.lock_state.name == "LOCKED"
        assert audit_rows(h, "owner.unlock") == []


async def test_an_unlock_from_home_assistant_is_the_owners_act_naming_the_broker(
    tmp_path: Path,
) -> None:
    async with gateway_with_ha(tmp_path, commands=True) as (_broker, ha, h):
        await ha.wait_for(f"{BASE}/availability", lambda p: p == b"online")
        mark = ha.mark()
        await ha.send(f"{DOOR}/lock/set", b"UNLOCK")
        answer = json.loads((await ha.wait_for(f"{DOOR}/lock/set/result", after=mark)).payload)
        assert answer["result"] == "done", answer
        await h.wait_lock(LockState.UNLOCKED)
        assert audit_rows(h, "owner.unlock") == [{"door": "front", "by": f"mqtt:{USER}@127.0.0.1"}]
        await ha.wait_for(f"{DOOR}/lock", lambda p: p == b"UNLOCKED", after=mark)
        mark = ha.mark()
        await ha.send(f"{DOOR}/lock/set", b"LOCK")
        answer = json.loads((await ha.wait_for(f"{DOOR}/lock/set/result", after=mark)).payload)
        assert answer["result"] == "done", answer
        await h.wait_lock(LockState.LOCKED)
        # Anything but LOCK or UNLOCK is refused, never guessed at.
        mark = ha.mark()
        await ha.send(f"{DOOR}/lock/set", b"OPEN")
        answer = json.loads((await ha.wait_for(f"{DOOR}/lock/set/result", after=mark)).payload)
        assert answer["reason"] == "unknown_command"


def test_commands_need_an_authenticated_encrypted_connection(tmp_path: Path) -> None:
    broker = Broker(tmp_path, 1883, 8883, tmp_path / "ca.pem", tmp_path / "p", tmp_path / "l")
    config = tmp_path / "threshold.toml"
    for tls in (False, True):
        settings = mqtt_settings(broker, tls=tls, commands=True)
        if tls:  # encrypted but anonymous
            settings = settings.replace(f'username = "{USER}"\n', "").replace(
                'password_file = "mqtt-password"\n', ""
            )
        config.write_text(
            '[gateway]\nid = "gw-test"\n'
            'owner_public_key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"\n'
            + settings
            + '[[door]]\nname = "front"\nlock = "sim"\n'
        )
        from gateway.app.config import load

        with pytest.raises(ConfigError, match=r"mqtt\.commands"):
            load(config)
        result = run_cli("run", "--config", str(config))
        assert result.returncode != 0
        assert "mqtt.commands" in result.stderr
        assert "Traceback" not in result.stderr


async def test_the_broker_going_away_never_holds_the_door(tmp_path: Path) -> None:
    async with (
        running_broker(tmp_path / "broker") as broker,
        home_assistant(broker) as ha,
        running_harness(tmp_path / "gw", configure=enable_mqtt(broker)) as h,
    ):
        assert h.gateway.mqtt is not None
        await ha.wait_for(f"{BASE}/availability", lambda p: p == b"online")
        await broker.stop()
        # The broker is gone: a courier still gets in, through the usual path.
        t = h.ticket(package_codes=("A",), subject="courier-9")
        opened = await h.open(t, package_code="A")
        await h.wait_lock(LockState.UNLOCKED)
        await h.done(t, opened.body["session"])
        await h.wait_lock(LockState.LOCKED)
        assert not h.gateway.mqtt.connected.is_set()
        connections = h.gateway.mqtt.connections
        await broker.start()
        # Home Assistant comes back too, and sees what happened while the broker was
        # away (retained: the last visit, the lock's state).
        async with home_assistant(broker) as ha_again:
            last = await ha_again.wait_for(
                f"{DOOR}/visit/last", lambda p: b"courier-9" in p, limit_s=90
            )
            assert json.loads(last.payload)["event_type"] == "courier_entry"
            await ha_again.wait_for(f"{DOOR}/lock", lambda p: p == b"LOCKED")
            await ha_again.wait_for(f"{BASE}/availability", lambda p: p == b"online")
        assert h.gateway.mqtt.connections == connections + 1


async def test_the_broker_password_file_must_be_private(tmp_path: Path) -> None:
    async with running_broker(tmp_path / "broker") as broker:
        config = await make_gateway_dir(tmp_path / "gw", Keys())
        enable_mqtt(broker)(config)
        secret = config.with_name("mqtt-password")
        secret.chmod(0o644)
        with pytest.raises(SecretFileExposed, match="chmod 600"):
            await start_gateway(config)


@pytest.mark.rtsp
async def test_a_visit_snapshot_reaches_the_image_entity(
    tmp_path: Path, rtsp_server: RtspTestServer
) -> None:
    """With the real GStreamer camera: the camera's connectivity, and the visit's snapshot
    (a JPEG) on the door's image entity."""
    settings = {
        ("camera", "url"): json.dumps(rtsp_server.url),
        ("camera", "read_timeout_s"): "1.0",
        ("camera", "preroll_s"): "2",
        ("camera", "post_roll_s"): "0.5",
    }
    async with (
        running_broker(tmp_path / "broker") as broker,
        home_assistant(broker) as ha,
        running_harness(
            tmp_path / "gw",
            settings=settings,
            allow_without_camera=False,
            configure=enable_mqtt(broker),
        ) as h,
    ):
        document = json.loads((await ha.wait_for(DISCOVERY)).payload)
        assert document["cmps"]["front_snapshot"]["p"] == "image"
        check_against_schema(document)
        await ha.wait_for(f"{BASE}/camera", lambda p: p == b"ON")
        mark = ha.mark()
        t = h.ticket(package_codes=("A",), camera=TicketCamera.REQUIRED)
        opened = await h.open(t, package_code="A")
        snapshot = await ha.wait_for(f"{DOOR}/snapshot", after=mark)
        assert snapshot.payload[:3] == b"\xff\xd8\xff"  # a JPEG
        await h.done(t, opened.body["session"])


async def test_an_owner_notification_is_an_event_and_its_delivery_is_timed(
    tmp_path: Path,
) -> None:
    async with gateway_with_ha(tmp_path) as (_broker, ha, h):
        await ha.wait_for(f"{BASE}/availability", lambda p: p == b"online")
        mark = ha.mark()
        t = h.ticket(purpose=Purpose.EMERGENCY, package_codes=(), subject="fire-brigade")
        opened = await h.open(t)
        attention = json.loads((await ha.wait_for(f"{BASE}/attention", after=mark)).payload)
        assert attention["event_type"] == "emergency"
        assert attention["who"] == "fire-brigade"
        assert attention["door"] == "front"
        visit = json.loads((await ha.wait_for(f"{DOOR}/visit", after=mark)).payload)
        assert visit["event_type"] == "emergency_entry"
        # The gateway took the broker's acknowledgement before it read Home Assistant's
        # birth (one connection, in order): the re-announcement proves the timing is in.
        again = ha.mark()
        await ha.birth()
        await ha.wait_for(DISCOVERY, after=again)
        count = h.gateway.metrics.registry.get_sample_value(
            "threshold_notification_delivery_seconds_count", {"notifier": "mqtt"}
        )
        assert count is not None
        assert count >= 1
        await h.done(t, opened.body["session"])


async def test_threshold_mqtt_forget_removes_the_device(tmp_path: Path) -> None:
    async with running_broker(tmp_path / "broker") as broker:
        async with (
            home_assistant(broker) as ha,
            running_harness(tmp_path / "gw", configure=enable_mqtt(broker)) as h,
        ):
            await ha.wait_for(f"{DOOR}/lock", lambda p: p == b"LOCKED")
            config = h.directory / "threshold.toml"
        assert (await retained(broker, DISCOVERY)).payload != b""
        done = await asyncio.to_thread(run_cli, "mqtt", "forget", "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert "removed gw-test from Home Assistant" in done.stdout
        # What a subscriber gets now is all the broker retains (before our own sentinel).
        async with home_assistant(broker) as late:
            await late.send("threshold/sentinel", b"end")
            await late.wait_for("threshold/sentinel")
            kept = [m.topic for m in late.received if m.topic != "threshold/sentinel"]
        assert kept == []
