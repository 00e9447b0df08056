"""The ``threshold`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function that adds
its parsers and sets ``handler`` (``args -> exit code``) on each. This module only assembles
them and owns the error contract every command keeps:

* exit 0: success, or an allow verdict;
* exit 1: a deny, or an operation that failed for a reason the message gives;
* exit 2: a usage error (a wrong flag, an unreadable key file, a truncated token).

Whatever happens, the user sees one line, never a traceback. ``THRESHOLD_DEBUG=1`` adds the
traceback for developers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from gateway.errors import GatewayError, UsageError

# Command groups, in the order ``threshold --help`` lists them.
_GROUPS: tuple[str, ...] = (
    "gateway.cli.version",
    "gateway.cli.keys",
    "gateway.cli.issuer",
    "gateway.cli.ticket",
    "gateway.cli.audit",
    "gateway.cli.demo",
    "gateway.cli.lock",
    "gateway.cli.camera",
    "gateway.cli.service",
    "gateway.cli.courier",
    "gateway.cli.owner",
    "gateway.cli.cloud",
)

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="threshold", description="Threshold, the offline-first home access gateway."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _GROUPS:
        importlib.import_module(name).register(sub)
    return parser


def _known_errors() -> tuple[type[Exception], ...]:
    # Imported lazily so that `threshold --help` does not pay for every package.
    from ble.errors import LockError
    from cloud.errors import CloudError
    from store.errors import StoreError
    from video.errors import CameraError

    return (GatewayError, StoreError, LockError, CameraError, CloudError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except UsageError as exc:
        print(f"threshold: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("threshold: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("THRESHOLD_DEBUG"):
            traceback.print_exc()
        if isinstance(exc, _known_errors()):
            code_name = getattr(exc, "code", "error")
            print(f"threshold: {code_name}: {exc}", file=sys.stderr)
            return EXIT_DENIED
        print(
            f"threshold: internal error ({type(exc).__name__}); rerun with THRESHOLD_DEBUG=1",
            file=sys.stderr,
        )
        return 70
