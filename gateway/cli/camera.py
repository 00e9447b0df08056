"""``threshold camera check URL``: connect to a camera, report what it sends, save a snapshot."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gateway.errors import UsageError


def _check(args: argparse.Namespace) -> int:
    from video.check import check_camera  # PyAV loads only for this command

    if args.within <= 0 or args.read_timeout <= 0:
        raise UsageError("--within and --read-timeout must be positive")
    result = check_camera(
        args.url,
        Path(args.snapshot),
        within_s=args.within,
        read_timeout_s=args.read_timeout,
        transport=args.transport,
    )
    print(json.dumps(result.as_dict()))
    return 0


def register(sub: Any) -> None:
    camera = sub.add_parser("camera", help="camera tools")
    commands = camera.add_subparsers(dest="camera_command", metavar="COMMAND")
    commands.required = True
    check = commands.add_parser(
        "check",
        help="connect to a camera and report codec, resolution, fps, keyframe interval",
    )
    check.add_argument("url", help="rtsp://[user:pass@]host[:port]/path, or a video file")
    check.add_argument("--snapshot", default="camera-check.jpg", help="where to save a JPEG")
    check.add_argument("--within", type=float, default=15.0, help="seconds to wait (15)")
    check.add_argument("--read-timeout", type=float, default=2.0, help="seconds (2)")
    check.add_argument("--transport", choices=("tcp", "udp"), default="tcp")
    check.set_defaults(handler=_check)
