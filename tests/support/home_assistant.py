"""A stand-in for Home Assistant's MQTT side: subscribes as Home Assistant does, keeps every
message it receives in order, and lets a test wait for one (woken by each arrival, with a
timeout; never a sleep). It can announce Home Assistant's birth (``homeassistant/status``
= ``online``) and send commands, like Home Assistant's MQTT integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiomqtt

from tests.support.mosquitto import PASSWORD, USER, Broker

WAIT = 15.0


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class HomeAssistant:
    client: aiomqtt.Client
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def mark(self) -> int:
        """A point in the stream: ``wait_for(after=mark)`` looks only at what came later."""
        return len(self.received)

    async def wait_for(
        self,
        topic: str,
        match: Callable[[bytes], bool] = lambda _: True,
        limit_s: float = WAIT,
        *,
        after: int = 0,
    ) -> Received:
        async with asyncio.timeout(limit_s), self.arrived:
            while True:
                for message in self.received[after:]:
                    if message.topic == topic and match(message.payload):
                        return message
                after = len(self.received)
                await self.arrived.wait()

    def on(self, topic: str, after: int = 0) -> list[Received]:
        return [m for m in self.received[after:] if m.topic == topic]

    async def _collect(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            async with self.arrived:
                self.received.append(Received(message.topic.value, payload, message.retain))
                self.arrived.notify_all()

    async def birth(self) -> None:
        await self.client.publish("homeassistant/status", b"online", qos=1)

    async def send(self, topic: str, payload: bytes) -> None:
        await self.client.publish(topic, payload, qos=1)


@contextlib.asynccontextmanager
async def home_assistant(broker: Broker, *, tls: bool = True) -> AsyncIterator[HomeAssistant]:
    """Connected and subscribed (retained messages included) before it is yielded."""
    context = None
    if tls:
        context = ssl.create_default_context(cafile=str(broker.ca_file))
    client = aiomqtt.Client(
        "127.0.0.1",
        broker.tls_port if tls else broker.port,
        username=USER if tls else None,
        password=PASSWORD if tls else None,
        # Unique: a second client with the same id would take the first one's session over.
        identifier=f"home-assistant-{secrets.token_hex(4)}",
        tls_context=context,
        timeout=WAIT,
    )
    async with client:
        ha = HomeAssistant(client)
        await client.subscribe("homeassistant/#", qos=1)
        await client.subscribe("threshold/#", qos=1)
        collector = asyncio.create_task(ha._collect())
        try:
            yield ha
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await collector


async def retained(broker: Broker, topic: str, limit_s: float = WAIT) -> Received:
    """What the broker retains on ``topic``, as a client subscribing now receives it (the
    retain flag is set only on messages sent because of a new subscription)."""
    async with home_assistant(broker) as late:
        return await late.wait_for(topic, lambda _: True, limit_s)
