"""The MQTT bridge on its own, against a real Mosquitto: what it holds while the broker is
away (events queued, bounded, oldest dropped; states kept), and a broker that refuses it
(wrong password) costs nothing but retries."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ble.driver import LockStatus
from gateway.access.observer import GrantCommitted
from gateway.mqtt.bridge import EVENT_QUEUE, BridgeSetup, MqttBridge
from gateway.mqtt.settings import MqttConfig
from tests.support.home_assistant import home_assistant
from tests.support.mosquitto import USER, running_broker

DOOR = "threshold/gw-1/door/front"


async def no_lock_act(door: str, action: str, by: str) -> LockStatus:
    raise AssertionError("no command is sent in these tests")


def setup(password: str | None = None) -> BridgeSetup:
    return BridgeSetup("gw-1", ("front",), "test", password, None, no_lock_act)


async def test_events_wait_for_the_broker_and_the_queue_is_bounded(tmp_path: Path) -> None:
    async with running_broker(tmp_path / "broker") as broker, home_assistant(broker) as ha:
        bridge = MqttBridge(MqttConfig(host="127.0.0.1", port=broker.port), setup())
        # Visits happen before any connection (the broker unreachable at start).
        total = EVENT_QUEUE + 10
        for n in range(total):
            bridge.observe(GrantCommitted(f"s-{n}", "front", "delivery", f"courier-{n}", None))
        await bridge.start()
        try:
            await ha.wait_for(f"{DOOR}/visit", lambda p: f'"s-{total - 1}"'.encode() in p)
            sessions = [json.loads(m.payload)["session"] for m in ha.on(f"{DOOR}/visit")]
            # The newest EVENT_QUEUE, in order; the oldest ten dropped.
            assert sessions == [f"s-{n}" for n in range(10, total)]
            last = await ha.wait_for(f"{DOOR}/visit/last")
            assert json.loads(last.payload)["who"] == f"courier-{total - 1}"
        finally:
            await bridge.stop()


async def test_a_broker_that_refuses_the_gateway_costs_only_retries(tmp_path: Path) -> None:
    async with running_broker(tmp_path / "broker") as broker:
        config = MqttConfig(
            host="127.0.0.1",
            port=broker.tls_port,
            tls=True,
            ca_file=broker.ca_file,
            username=USER,
        )
        bridge = MqttBridge(config, setup(password="wrong"))
        await bridge.start()
        try:
            for n in range(3):
                bridge.observe(GrantCommitted(f"s-{n}", "front", "delivery", "c", None))
            # Refused at CONNECT: never connected, and observing never blocks or raises.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(bridge.connected.wait(), 3)
        finally:
            await asyncio.wait_for(bridge.stop(), 5)
