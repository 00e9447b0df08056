"""Home Assistant's device-based MQTT discovery document for one gateway (pure).

Home Assistant (2024.11 and later) reads one retained JSON document per device at
``<discovery prefix>/device/<node id>/config`` with ``dev`` (the device), ``o`` (the origin:
the software that publishes), ``cmps`` (the components, each with its platform ``p`` and a
``unique_id``) and the options the components share (availability, ``qos``). An empty
retained payload on the same topic removes the device. Keys are written in full (``dev``,
``o`` and ``cmps``, ``p`` excepted) so the document reads without the abbreviation table.

The components (entities): per door a ``lock`` (its commands refused unless the owner turned
them on),
a door ``binary_sensor``, a battery ``sensor`` and a critical-battery ``binary_sensor``, an
``event`` entity for visits, a ``sensor`` with the last visit (retained, so it survives Home
Assistant's restarts; who and purpose as attributes) and an ``image`` with the latest visit
snapshot; for the gateway
a camera connectivity ``binary_sensor``, an alarm ``binary_sensor`` and an ``event`` entity
for everything that needs the owner's attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.mqtt.states import ATTENTION_EVENT_TYPES, VISIT_EVENT_TYPES, Command, LockPayload
from gateway.mqtt.topics import Topics


def discovery_document(
    topics: Topics,
    gateway_id: str,
    doors: Sequence[str],
    *,
    version: str,
    camera: bool,
) -> dict[str, Any]:
    """The discovery document (a JSON object) for this gateway's doors and camera."""
    node = topics.node_id
    components: dict[str, dict[str, Any]] = {}
    for door in doors:
        t = topics.door(door)
        lock: dict[str, Any] = {
            "p": "lock",
            "unique_id": f"{node}_{door}_lock",
            "name": f"{door} lock",
            "state_topic": t.lock,
            "state_locked": LockPayload.LOCKED.value,
            "state_locking": LockPayload.LOCKING.value,
            "state_unlocked": LockPayload.UNLOCKED.value,
            "state_unlocking": LockPayload.UNLOCKING.value,
            "state_jammed": LockPayload.JAMMED.value,
            "state_open": LockPayload.OPEN.value,
            # Home Assistant requires a command topic for every MQTT lock. While the owner
            # has not turned commands on, the gateway answers each one "refused" on
            # <command topic>/result and the lock does not move.
            "command_topic": t.command,
            "payload_lock": Command.LOCK.value,
            "payload_unlock": Command.UNLOCK.value,
            # Threshold never unlatches from Home Assistant: no payload_open.
            "optimistic": False,
        }
        components[f"{door}_lock"] = lock
        components[f"{door}_door"] = {
            "p": "binary_sensor",
            "unique_id": f"{node}_{door}_door",
            "name": f"{door} door",
            "device_class": "door",
            "state_topic": t.contact,
        }
        components[f"{door}_battery"] = {
            "p": "sensor",
            "unique_id": f"{node}_{door}_battery",
            "name": f"{door} lock battery",
            "device_class": "battery",
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "entity_category": "diagnostic",
            "state_topic": t.battery,
        }
        components[f"{door}_battery_low"] = {
            "p": "binary_sensor",
            "unique_id": f"{node}_{door}_battery_low",
            "name": f"{door} lock battery critical",
            "device_class": "battery",
            "entity_category": "diagnostic",
            "state_topic": t.battery_low,
        }
        components[f"{door}_visit"] = {
            "p": "event",
            "unique_id": f"{node}_{door}_visit",
            "name": f"{door} visit",
            "event_types": list(VISIT_EVENT_TYPES),
            "state_topic": t.visit,
        }
        components[f"{door}_last_visit"] = {
            "p": "sensor",
            "unique_id": f"{node}_{door}_last_visit",
            "name": f"{door} last visit",
            "state_topic": t.last_visit,
            "value_template": "{{ value_json.event_type }}",
            "json_attributes_topic": t.last_visit,
        }
        if camera:
            components[f"{door}_snapshot"] = {
                "p": "image",
                "unique_id": f"{node}_{door}_snapshot",
                "name": f"{door} latest visit",
                "image_topic": t.snapshot,
                "content_type": "image/jpeg",
            }
    if camera:
        components["camera"] = {
            "p": "binary_sensor",
            "unique_id": f"{node}_camera",
            "name": "camera",
            "device_class": "connectivity",
            "entity_category": "diagnostic",
            "state_topic": topics.camera,
        }
    components["alarm"] = {
        "p": "binary_sensor",
        "unique_id": f"{node}_alarm",
        "name": "alarm",
        "device_class": "problem",
        "state_topic": topics.alarm,
        "json_attributes_topic": f"{topics.alarm}/attributes",
    }
    components["attention"] = {
        "p": "event",
        "unique_id": f"{node}_attention",
        "name": "owner attention",
        "event_types": list(ATTENTION_EVENT_TYPES),
        "state_topic": topics.attention,
    }
    return {
        "dev": {
            "identifiers": [node],
            "name": f"Threshold {gateway_id}",
            "manufacturer": "Threshold",
            "model": "Home access gateway",
            "sw_version": version,
        },
        "o": {"name": "threshold", "sw_version": version},
        "cmps": components,
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
    }
