"""``threshold mqtt forget``: remove this gateway from Home Assistant (docs/operations.md).

Publishes an empty retained discovery document (Home Assistant removes the device and its
entities) and clears every retained state the bridge left on the broker. Run it after
turning ``[mqtt]`` off or before retiring the gateway; a running gateway announces itself
again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.errors import UsageError


def _forget(args: argparse.Namespace) -> int:
    import aiomqtt

    from gateway.app.config import load
    from gateway.mqtt.bridge import forget_device

    path = Path(args.config)
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    config = load(path)
    doors = [d.name for d in config.doors]
    try:
        cleared = asyncio.run(forget_device(config.mqtt, config.gateway_id, doors))
    except aiomqtt.MqttError as exc:
        where = f"{config.mqtt.host}:{config.mqtt.port}"
        print(f"threshold: mqtt: the broker at {where}: {exc}", file=sys.stderr)
        return 1
    print(f"removed {config.gateway_id} from Home Assistant; {cleared} retained topics cleared")
    return 0


def register(sub: Any) -> None:
    mqtt = sub.add_parser("mqtt", help="Home Assistant over MQTT")
    commands = mqtt.add_subparsers(dest="mqtt_command", required=True)
    forget = commands.add_parser(
        "forget", help="remove this gateway's device and retained states from the broker"
    )
    forget.add_argument("--config", required=True, help="path to threshold.toml")
    forget.set_defaults(handler=_forget)
