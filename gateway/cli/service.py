"""``threshold init`` and ``threshold run``: create a gateway directory, and run the service."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from gateway.errors import UsageError


def _init(args: argparse.Namespace) -> int:
    from gateway.app.config import DoorConfig
    from gateway.app.provision import init_gateway, parse_door_arg

    doors: tuple[DoorConfig, ...] = tuple(parse_door_arg(d) for d in args.door) or (
        DoorConfig("front", "sim"),
    )
    result = init_gateway(
        Path(args.dir),
        owner_pub=args.owner_pub,
        gateway_id=args.gateway_id,
        timezone=args.tz,
        doors=doors,
        camera_url=args.camera,
        bind=args.bind,
    )
    print(
        json.dumps(
            {
                "gateway_id": result.gateway_id,
                "public_key": result.public_key,
                "tls_fingerprint": result.tls_fingerprint,
                "tls_fingerprint_alg": "spki-sha256",
                "config": str(result.config_path),
            },
            indent=2,
        )
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from gateway.app.logs import LogFormat, configure_logging, log_format_from_env
    from gateway.app.wiring import Overrides, serve

    path = Path(args.config)
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file (run threshold init first)")
    camera = args.camera
    if camera and "://" not in camera and not Path(camera).is_file():
        raise UsageError(f"--camera {camera}: no such video file")
    configure_logging(fmt=LogFormat(args.log_format) if args.log_format else log_format_from_env())
    asyncio.run(serve(path, Overrides(camera_url=camera or None)))
    return 0


def register(sub: Any) -> None:
    init = sub.add_parser(
        "init",
        help="create a gateway: key, threshold.toml, TLS certificate, database",
        description="Create a new gateway directory. Refuses to overwrite anything.",
    )
    init.add_argument("--dir", required=True, help="the gateway directory to create")
    init.add_argument(
        "--owner-pub",
        required=True,
        help="the owner's Ed25519 public key (b64u)",
    )
    init.add_argument("--gateway-id", help="this gateway's id (default: gw-<random>)")
    init.add_argument("--tz", default="UTC", help="IANA time zone for schedules (default UTC)")
    init.add_argument(
        "--door",
        action="append",
        default=[],
        metavar="NAME=LOCK",
        help="a door and its lock: sim or nuki:AA:BB:CC:DD:EE:FF (repeatable; default front=sim)",
    )
    init.add_argument("--camera", help="RTSP URL of the entrance camera")
    init.add_argument(
        "--bind", default="127.0.0.1:8443", help="where the LAN API listens (HOST:PORT)"
    )
    init.set_defaults(handler=_init)

    run = sub.add_parser("run", help="run the gateway service")
    run.add_argument("--config", required=True, help="path to threshold.toml")
    run.add_argument(
        "--camera",
        metavar="URL_OR_FILE",
        help="an RTSP URL or a local video file (looped) instead of [camera] url",
    )
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="one line per event as text (default) or JSON for journald (or THRESHOLD_LOG_FORMAT)",
    )
    run.set_defaults(handler=_run)
