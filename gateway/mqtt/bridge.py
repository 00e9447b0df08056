"""The MQTT bridge to Home Assistant: the async shell around the pure discovery and states.

One :class:`MqttBridge` per gateway, started by the wiring when ``[mqtt] host`` is set:

* it is an :class:`~gateway.access.observer.AccessObserver` and a lock-status listener whose
  calls only record what changed and wake the publisher: **the broker never holds up the
  access path** (a broker that is down, slow or full costs Home Assistant its updates,
  never a visitor their door);
* what Home Assistant must see at once is kept here, one value per topic (the latest lock
  state, door, battery, camera, alarm, snapshot), and is published retained, again after
  every reconnection; visits and the owner's notifications are events (not retained),
  queued up to :data:`EVENT_QUEUE` and the oldest dropped beyond it;
* one aiomqtt connection, kept up with backoff (:func:`groundwork.backoff.doubling_delay`),
  with a retained last will ``offline`` on the availability topic, ``online`` once
  connected, ``offline`` again on a clean stop;
* discovery is re-published whenever Home Assistant announces ``online`` on
  ``homeassistant/status``;
* commands (``LOCK``/``UNLOCK`` on a door's command topic) are answered on the door's
  ``lock/result`` topic: refused while ``[mqtt] commands`` is off or the connection is not
  both authenticated and encrypted; otherwise performed as the owner's act naming the broker
  identity (``mqtt:<username>@<host>``), recorded in the audit log like any owner act.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiomqtt

from ble.driver import LockStatus
from gateway.access.errors import AccessRefused
from gateway.access.observer import AccessEvent, AlarmRaised, DoorRelocked, OwnerNotification
from gateway.errors import ConfigError
from gateway.mqtt.discovery import discovery_document
from gateway.mqtt.settings import MqttConfig
from gateway.mqtt.states import (
    Command,
    Publication,
    alarm_attributes,
    attention_event,
    contact_payload,
    encode,
    lock_payload,
    on_off,
    parse_command,
    visit_event,
)
from gateway.mqtt.topics import Topics
from groundwork.backoff import doubling_delay

log = logging.getLogger("threshold.mqtt")

#: Events (visits, notifications) held while the broker is away; the oldest go first.
EVENT_QUEUE = 256
RECONNECT_INITIAL_S = 1.0
RECONNECT_CAP_S = 60.0
#: How often the camera's connectivity is looked at (it has no change callback).
CAMERA_CHECK_S = 5.0
#: What one broker operation may take before the connection is counted as lost.
OPERATION_TIMEOUT_S = 5.0
KEEPALIVE_S = 30

#: Performs an owner lock act: ``(door, "lock" | "unlock", by)``.
LockAct = Callable[[str, str, str], Awaitable[LockStatus]]


@dataclass(frozen=True, slots=True)
class BridgeSetup:
    """What the bridge needs from the gateway (the wiring fills it in)."""

    gateway_id: str
    doors: Sequence[str]
    version: str
    #: The broker password, read from ``[mqtt] password_file`` by the wiring.
    password: str | None
    #: Whether the camera's stream is live; None without a camera.
    camera_live: Callable[[], bool] | None
    #: The owner's lock act (AccessService.owner_lock).
    lock_act: LockAct
    #: Told, in seconds, how long each owner notification took to reach the broker.
    notification_delivered: Callable[[float], None] = lambda seconds: None


class MqttPasswordUnreadable(ConfigError):
    code = "mqtt_password_unreadable"


def read_password(config: MqttConfig) -> str | None:
    """The broker password from ``[mqtt] password_file`` (None without one)."""
    if config.password_file is None:
        return None
    try:
        return config.password_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise MqttPasswordUnreadable(
            f"mqtt: cannot read the broker password from {config.password_file} ({exc})"
        ) from None


def tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    context = ssl.create_default_context(
        cafile=None if config.ca_file is None else str(config.ca_file)
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def retained_topics(topics: Topics, doors: Sequence[str]) -> list[str]:
    """Every topic the bridge may leave retained on the broker."""
    found = [
        topics.discovery,
        topics.availability,
        topics.camera,
        topics.alarm,
        f"{topics.alarm}/attributes",
    ]
    for door in doors:
        t = topics.door(door)
        found += [t.lock, t.contact, t.battery, t.battery_low, t.last_visit, t.snapshot]
    return found


async def forget_device(config: MqttConfig, gateway_id: str, doors: Sequence[str]) -> int:
    """``threshold mqtt forget``: remove the device from Home Assistant (an empty retained
    discovery document) and clear every retained state; the number of topics cleared."""
    if config.host is None:
        raise ConfigError("threshold.toml: mqtt.host is not set: there is no broker to clean")
    topics = Topics.of(config.prefix, config.discovery_prefix, gateway_id)
    cleared = retained_topics(topics, doors)
    async with aiomqtt.Client(
        config.host,
        config.port,
        username=config.username,
        password=read_password(config),
        identifier=f"threshold-{gateway_id}-forget",
        tls_context=tls_context(config),
        timeout=OPERATION_TIMEOUT_S,
    ) as client:
        for topic in cleared:
            await client.publish(topic, b"", qos=1, retain=True)
    return len(cleared)


class MqttBridge:
    """Home Assistant's view of one gateway. ``await start()``, then ``await stop()``."""

    def __init__(self, config: MqttConfig, setup: BridgeSetup) -> None:
        if config.host is None:
            raise ValueError("the bridge needs [mqtt] host")
        self._config = config
        self._host = config.host
        self._setup = setup
        self.topics = Topics.of(config.prefix, config.discovery_prefix, setup.gateway_id)
        #: The latest value of every retained state topic (this class is its one owner).
        self._retained: dict[str, bytes] = {}
        self._dirty: list[str] = []
        self._events: deque[Publication] = deque(maxlen=EVENT_QUEUE)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._command_tasks: set[asyncio.Task[None]] = set()
        self._alarmed: set[str] = set()
        self._camera_live: bool | None = None
        #: Set while a broker connection is up (tests and ``threshold status`` read it).
        self.connected = asyncio.Event()
        self.connections = 0

    # -- what the gateway reports (on the access path: record and wake, nothing more) ----

    def observe(self, event: AccessEvent) -> None:
        """:class:`~gateway.access.observer.AccessObserver`."""
        visit = visit_event(event)
        if visit is not None:
            door, payload = visit
            t = self.topics.door(door)
            self._event(t.visit, encode(payload))
            self._state(t.last_visit, encode(payload))
        if isinstance(event, OwnerNotification):
            self._events.append(
                Publication(
                    self.topics.attention,
                    encode(attention_event(event)),
                    retain=False,
                    queued_at=time.perf_counter(),
                )
            )
            self._wake.set()
        elif isinstance(event, AlarmRaised):
            self._alarmed.add(event.session)
            self._state(f"{self.topics.alarm}/attributes", encode(alarm_attributes(event)))
            self._state(self.topics.alarm, b"ON")
        elif isinstance(event, DoorRelocked) and event.session in self._alarmed:
            self._alarmed.discard(event.session)
            if not self._alarmed:
                self._state(self.topics.alarm, b"OFF")

    def lock_status(self, door: str, status: LockStatus) -> None:
        """Every reading of a door's lock (a listener on the metered driver)."""
        t = self.topics.door(door)
        lock = lock_payload(status)
        if lock is not None:
            self._state(t.lock, lock.value.encode())
        contact = contact_payload(status)
        if contact is not None:
            self._state(t.contact, contact.encode())
        if status.battery_percent is not None:
            self._state(t.battery, str(status.battery_percent).encode())
        self._state(t.battery_low, on_off(status.battery_critical).encode())

    def snapshot(self, door: str, jpeg: bytes) -> None:
        """A visit's snapshot (EntryCamera.on_snapshot): the door's image entity."""
        self._state(self.topics.door(door).snapshot, jpeg)

    def _state(self, topic: str, payload: bytes) -> None:
        if self._retained.get(topic) == payload:
            return
        self._retained[topic] = payload
        if topic not in self._dirty:
            self._dirty.append(topic)
        self._wake.set()

    def _event(self, topic: str, payload: bytes) -> None:
        self._events.append(Publication(topic, payload, retain=False))
        self._wake.set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mqtt bridge")

    async def stop(self, budget_s: float = 2.0) -> None:
        """Say ``offline`` (retained) and disconnect cleanly, within ``budget_s``."""
        if self._task is None:
            return
        self._stop.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), budget_s)
        except TimeoutError:
            log.warning("mqtt: the broker did not take the goodbye in %.1f s", budget_s)
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            for task in list(self._command_tasks):
                task.cancel()

    # -- the connection ----------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        c = self._config
        return aiomqtt.Client(
            self._host,
            c.port,
            username=c.username,
            password=self._setup.password,
            identifier=f"threshold-{self._setup.gateway_id}",
            will=aiomqtt.Will(self.topics.availability, b"offline", qos=1, retain=True),
            tls_context=tls_context(c),
            keepalive=KEEPALIVE_S,
            timeout=OPERATION_TIMEOUT_S,
        )

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            why = "the connection ended"
            try:
                async with self._client() as client:
                    failures = 0
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                why = str(exc)
            finally:
                self.connected.clear()
            if self._stop.is_set():
                return
            failures += 1
            delay = doubling_delay(
                failures, RECONNECT_INITIAL_S, RECONNECT_CAP_S, jitter=random.random
            )
            log.warning(
                "mqtt: broker %s:%d unavailable (%s); retrying in %.1f s",
                self._host,
                self._config.port,
                why,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection: announce, then publish and listen until stopped or lost."""
        await client.subscribe(self.topics.ha_status, qos=1)
        await client.subscribe(f"{self.topics.base}/door/+/lock/set", qos=1)
        await self._announce(client)
        self.connections += 1
        self.connected.set()
        log.info("mqtt: connected to %s:%d", self._host, self._config.port)
        listener = asyncio.create_task(self._listen(client), name="mqtt listen")
        try:
            await self._publish_until_stopped(client, listener)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await listener
        if self._stop.is_set():
            await client.publish(self.topics.availability, b"offline", qos=1, retain=True)

    async def _announce(self, client: aiomqtt.Client) -> None:
        """Discovery, ``online`` and every retained state (after each (re)connection and
        each Home Assistant birth message)."""
        document = discovery_document(
            self.topics,
            self._setup.gateway_id,
            self._setup.doors,
            version=self._setup.version,
            camera=self._setup.camera_live is not None,
        )
        await client.publish(
            self.topics.discovery, json.dumps(document).encode(), qos=1, retain=True
        )
        await client.publish(self.topics.availability, b"online", qos=1, retain=True)
        self._dirty = list(self._retained)
        self._wake.set()

    async def _publish_until_stopped(
        self, client: aiomqtt.Client, listener: asyncio.Task[None]
    ) -> None:
        while True:
            # Cleared before flushing: a change (or stop()) during the flush wakes the wait.
            self._wake.clear()
            self._check_camera()
            await self._flush(client)
            if listener.done():
                listener.result()  # the connection was lost: raise its MqttError
                return
            if self._stop.is_set():
                return
            waiter = asyncio.create_task(self._wake.wait())
            await asyncio.wait(
                {waiter, listener}, timeout=CAMERA_CHECK_S, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()

    async def _flush(self, client: aiomqtt.Client) -> None:
        while self._dirty:
            topic = self._dirty[0]
            await client.publish(topic, self._retained[topic], qos=1, retain=True)
            # Only once the broker has it: a lost connection republishes everything anyway.
            if self._dirty and self._dirty[0] == topic:
                self._dirty.pop(0)
        while self._events:
            event = self._events[0]
            await client.publish(event.topic, event.payload, qos=1, retain=False)
            if self._events and self._events[0] is event:
                self._events.popleft()
            if event.queued_at is not None:
                self._setup.notification_delivered(time.perf_counter() - event.queued_at)

    def _check_camera(self) -> None:
        live_of = self._setup.camera_live
        if live_of is None:
            return
        live = live_of()
        if live != self._camera_live:
            self._camera_live = live
            self._state(self.topics.camera, on_off(live).encode())

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else b""
            if topic == self.topics.ha_status:
                if payload == b"online":
                    log.info("mqtt: Home Assistant is online; announcing again")
                    await self._announce(client)
                continue
            door = self.topics.door_of_command(topic)
            if door is not None:
                task = asyncio.create_task(self._command(client, door, payload))
                self._command_tasks.add(task)
                task.add_done_callback(self._command_tasks.discard)

    # -- commands ----------------------------------------------------------------------

    @property
    def broker_identity(self) -> str:
        return f"mqtt:{self._config.username or 'anonymous'}@{self._host}"

    async def _command(self, client: aiomqtt.Client, door: str, payload: bytes) -> None:
        command = parse_command(payload)
        result: dict[str, str] = {"command": payload[:16].decode("ascii", "replace")}
        if command is None:
            result |= {"result": "refused", "reason": "unknown_command"}
        elif door not in self._setup.doors:
            result |= {"result": "refused", "reason": "unknown_door"}
        elif not self._config.commands:
            result |= {"result": "refused", "reason": "commands_disabled"}
        elif not (self._config.tls and self._config.username is not None):
            # The configuration refuses this combination; checked again where it matters.
            result |= {"result": "refused", "reason": "connection_not_authenticated"}
        else:
            action = "unlock" if command is Command.UNLOCK else "lock"
            try:
                status = await self._setup.lock_act(door, action, self.broker_identity)
            except AccessRefused as exc:
                result |= {"result": "refused", "reason": exc.access_code.value}
            else:
                result |= {"result": "done", "lock": status.lock.value}
        if result["result"] == "refused":
            log.warning(
                "mqtt: %s on door %s refused (%s)", result["command"], door, result["reason"]
            )
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(
                f"{self.topics.door(door).command}/result", encode(result), qos=1, retain=False
            )
