"""The ``threshold`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function that adds
its parsers and sets ``handler`` (``args -> exit code``) on each. This module only assembles
them and owns the error contract every command keeps:

* exit 0: success, or an allow verdict;
* exit 1: a deny, or an operation that failed for a reason the message gives;
* exit 2: a usage error (a wrong flag, an unreadable key file, a token ``ticket inspect`` cannot
  decode). A token that ``ticket verify`` cannot decode is a deny (``bad_token``, exit 1).

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
from typing import Any, ClassVar, NoReturn

from gateway.errors import GatewayError, UsageError

# Command groups, in the order ``threshold --help`` lists them.
_GROUPS: tuple[str, ...] = (
    "gateway.cli.version",
    "gateway.cli.keys",
    "gateway.cli.issuer",
    "gateway.cli.ticket",
    "gateway.cli.revocations",
    "gateway.cli.audit",
    "gateway.cli.demo",
    "gateway.cli.lock",
    "gateway.cli.camera",
    "gateway.cli.service",
    "gateway.cli.backup",
    "gateway.cli.systemd",
    "gateway.cli.status",
    "gateway.cli.card",
    "gateway.cli.mqtt",
    "gateway.cli.remote",
    "gateway.cli.courier",
    "gateway.cli.owner",
    "gateway.cli.cloud",
)

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_USAGE = 2


class _OptionIndex:
    """The option strings of one command tree, recorded as ``add_argument`` returns them."""

    def __init__(self) -> None:
        self.every: set[str] = set()
        self.single_valued: set[str] = set()

    def record(self, action: argparse.Action) -> None:
        self.every.update(action.option_strings)
        if action.option_strings and action.nargs is None and action.const is None:
            self.single_valued.update(s for s in action.option_strings if s.startswith("--"))


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line and exit code 2, and that indexes options.

    Every parser of one tree shares ``options``: ``build_parser`` makes a subclass per tree,
    and argparse builds each subparser with its parent's class (the documented default of
    ``add_subparsers(parser_class=...)``). Options added to an argument group would bypass
    ``add_argument`` here; the CLI uses none.
    """

    options: ClassVar[_OptionIndex]
    # The action ``add_subparsers`` returned, so a second module can add commands to a group
    # another one made (``threshold owner log`` lives in ``cli.cloud``).
    subcommands: Any = None

    def add_subparsers(self, **kwargs: Any) -> Any:
        self.subcommands = super().add_subparsers(**kwargs)
        return self.subcommands

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options.record(action)
        return action

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> _Parser:
    class TreeParser(_Parser):
        options = _OptionIndex()

    parser = TreeParser(
        prog="threshold", description="Threshold, the offline-first home access gateway."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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


def _attach_dashed_values(argv: Sequence[str], parser: _Parser) -> list[str]:
    """Join ``--opt VALUE`` into ``--opt=VALUE`` when VALUE starts with a dash.

    Keys, nonces and ticket ids are base64url, and one in 64 of them starts with ``-``.
    argparse reads such a value as an unknown option and fails with "expected one argument",
    so a randomly generated key would break a copied command one time in 64.
    """
    every, valued = parser.options.every, parser.options.single_valued
    out: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        word = tokens[i]
        if word == "--":
            out.extend(tokens[i:])
            break
        if (
            word in valued
            and i + 1 < len(tokens)
            and tokens[i + 1].startswith("-")
            and len(tokens[i + 1]) > 1
            and tokens[i + 1].split("=", 1)[0] not in every
        ):
            out.append(f"{word}={tokens[i + 1]}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    raw = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(_attach_dashed_values(raw, parser))
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
