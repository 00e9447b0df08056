"""Every MQTT topic of one gateway (pure).

``<prefix>/<gateway id>/...`` for the gateway's own state, ``<discovery prefix>/device/
<node id>/config`` for Home Assistant's device-based discovery and ``<discovery prefix>/
status`` for Home Assistant's birth and last-will messages. Door names are already limited
to topic-safe characters by the configuration (``[a-z0-9-]``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DoorTopics:
    """The topics of one door."""

    lock: str
    command: str
    contact: str
    battery: str
    battery_low: str
    visit: str
    last_visit: str
    snapshot: str


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one gateway; build with :meth:`of`."""

    base: str
    node_id: str
    discovery: str
    ha_status: str
    availability: str
    camera: str
    alarm: str
    attention: str

    @classmethod
    def of(cls, prefix: str, discovery_prefix: str, gateway_id: str) -> Topics:
        base = f"{prefix}/{gateway_id}"
        # Home Assistant's node ids are [a-zA-Z0-9_-]; a gateway id is [a-z0-9-].
        node_id = f"threshold_{gateway_id}"
        return cls(
            base=base,
            node_id=node_id,
            discovery=f"{discovery_prefix}/device/{node_id}/config",
            ha_status=f"{discovery_prefix}/status",
            availability=f"{base}/availability",
            camera=f"{base}/camera",
            alarm=f"{base}/alarm",
            attention=f"{base}/attention",
        )

    def door(self, name: str) -> DoorTopics:
        d = f"{self.base}/door/{name}"
        return DoorTopics(
            lock=f"{d}/lock",
            command=f"{d}/lock/set",
            contact=f"{d}/contact",
            battery=f"{d}/battery",
            battery_low=f"{d}/battery_low",
            visit=f"{d}/visit",
            last_visit=f"{d}/visit/last",
            snapshot=f"{d}/snapshot",
        )

    def door_of_command(self, topic: str) -> str | None:
        """The door a command topic names, or None when ``topic`` is not one."""
        head, tail = f"{self.base}/door/", "/lock/set"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        name = topic[len(head) : -len(tail)]
        return name if name and "/" not in name else None
