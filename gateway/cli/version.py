"""``threshold version``: print the version of Threshold and of the protocol pieces it speaks."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway import __version__


def _run(args: argparse.Namespace) -> int:
    print(json.dumps({"threshold": __version__, "api": "v1"}))
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("version", help="print the version")
    parser.set_defaults(handler=_run)
