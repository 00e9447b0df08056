"""``threshold keys``: make an Ed25519 key file (mode 0600) and show a key file's public key."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli import inputs
from gateway.trust.keys import generate_secret_key, key_id, public_key_of
from gateway.trust.paseto import b64encode


def _new(args: argparse.Namespace) -> int:
    secret = generate_secret_key()
    inputs.write_secret_key(args.out, secret)
    print(b64encode(public_key_of(secret)))
    return 0


def _show(args: argparse.Namespace) -> int:
    public = public_key_of(inputs.read_secret_key(args.file))
    print(b64encode(public))
    if args.kid:
        print(key_id(public))
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("keys", help="make and show Ed25519 key files")
    keys = parser.add_subparsers(dest="keys_command", metavar="COMMAND")
    keys.required = True
    new = keys.add_parser(
        "new", help="write a new secret key file (mode 0600), print its public key"
    )
    new.add_argument("--out", required=True, metavar="FILE")
    new.set_defaults(handler=_new)
    show = keys.add_parser("show", help="print the public key of a key file")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--kid", action="store_true", help="also print the key id (PASERK k4.pid)")
    show.set_defaults(handler=_show)
