"""The flags with which ``threshold owner`` and ``threshold courier`` authenticate the gateway.

``--pin-fingerprint`` (the pin ``threshold init`` printed) or ``--known-gateways`` (trust on
first use, said on stderr); see :mod:`gateway.clients.known_gateways` for the rules.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pin-fingerprint",
        metavar="HEX",
        help="the gateway's TLS key fingerprint (SPKI SHA-256, as threshold init prints it)",
    )
    parser.add_argument(
        "--known-gateways",
        metavar="FILE",
        help="where gateways' keys are pinned on first contact "
        "(default ~/.config/threshold/known_gateways)",
    )


def _notice(text: str) -> None:
    print(f"threshold: {text}", file=sys.stderr, flush=True)


async def open_gateway(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """An authenticated :class:`gateway.clients.lan.GatewayClient` and the gateway's info."""
    from gateway.clients import known_gateways
    from gateway.trust.tls_pin import PinError, parse_pin

    pin = None
    if args.pin_fingerprint is not None:
        try:
            pin = parse_pin(args.pin_fingerprint)
        except PinError as exc:
            raise UsageError(f"--pin-fingerprint: {exc.message}") from None
    path = Path(args.known_gateways) if args.known_gateways else known_gateways.default_path()
    return await known_gateways.open_gateway(args.gateway, pin=pin, known_path=path, notice=_notice)
