"""``threshold card``: print the gateway card (docs/api.md, "The gateway card").

The card is the JSON object a phone needs beside its ticket: the gateway's id, the address
to reach it, its TLS pin and its key. It is printed as one JSON line on stdout, then as a QR
code (drawn as :mod:`gateway.cli.owner` draws enrollment links) for an issuer's phone to scan.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.errors import UsageError


def _card(args: argparse.Namespace) -> int:
    from gateway.app.card import is_loopback_url, parse_card_url, read_card
    from gateway.app.config import load
    from gateway.cli.owner import terminal_qr

    path = Path(args.config)
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    url = parse_card_url(args.url) if args.url is not None else None
    card = read_card(load(path), url)
    text = card.as_json()
    print(text)
    if not args.no_qr:
        print(terminal_qr(text), end="")
    if is_loopback_url(card.url):
        print(
            f"threshold: note: {card.url} is this host's loopback address, which a phone on "
            "the LAN cannot reach: set [api] bind or pass --url",
            file=sys.stderr,
        )
    print(
        f"gateway card for {card.gateway_id} at {card.url}: give it to each issuer, who hands "
        "it to the phone with every ticket",
        file=sys.stderr,
    )
    return 0


def register(sub: Any) -> None:
    card = sub.add_parser(
        "card",
        help="the gateway card a phone needs: id, address, TLS pin, key (JSON and QR code)",
        description=(
            "Print the gateway card (docs/api.md): one JSON line, then a QR code of it. "
            "The address comes from [api] bind unless --url gives it."
        ),
    )
    card.add_argument("--config", required=True, help="path to threshold.toml")
    card.add_argument(
        "--url",
        metavar="https://HOST:PORT",
        help="the address phones reach the gateway at (needed when bound to every address "
        "on a host with several, or behind a port forward)",
    )
    card.add_argument("--no-qr", action="store_true", help="print the JSON line only")
    card.set_defaults(handler=_card)
