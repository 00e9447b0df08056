"""``threshold demo [--dir DIR] [--serve]``: the whole gateway on embedded defaults
(gateway/demo/story.py); ``--serve`` then keeps it up for the owner app.

Without ``--dir`` everything lives in a temporary directory that is removed afterwards; with
it, the gateway directory (database included) is kept for inspection and reused next time.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from gateway.demo.story import run_demo

    return run_demo(
        Path(args.dir) if args.dir else None, camera=not args.no_camera, serve=args.serve
    )


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo", help="run the gateway end to end (virtual lock, no internet) and print a timeline"
    )
    parser.add_argument("--dir", metavar="DIR", help="keep the gateway directory in DIR")
    parser.add_argument(
        "--no-camera",
        action="store_true",
        help="no camera (policy.allow_without_camera); by default a generated test video "
        "is the camera and every entry is filmed",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="then keep the gateway up for the owner app: print its URL and a fresh "
        "enrollment link, send a surveyor to approve (Ctrl-C stops)",
    )
    parser.set_defaults(handler=_run)
