"""``threshold backup`` and ``threshold restore``: the gateway in one file encrypted to the
owner, and a replacement gateway from it (docs/operations.md, "Backup and restore")."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gateway.errors import UsageError


def _backup(args: argparse.Namespace) -> int:
    from gateway.app.backup import write_backup

    config = Path(args.config)
    if not config.is_file():
        raise UsageError(f"--config {config}: no such file")
    summary = write_backup(config, Path(args.out), clips=args.clips)
    print(json.dumps(summary.to_json()))
    return 0


def _restore(args: argparse.Namespace) -> int:
    from gateway.app.backup import restore_backup
    from gateway.app.identity import KeyFileError, load_signing_key

    try:
        owner = load_signing_key(Path(args.owner_key))
    except KeyFileError as exc:
        raise UsageError(exc.message) from None
    summary = restore_backup(Path(args.input), owner, Path(args.dir))
    print(json.dumps(summary.to_json()))
    return 0


def register(sub: Any) -> None:
    backup = sub.add_parser(
        "backup",
        help="write everything a replacement gateway needs, encrypted to the owner",
        description=(
            "Keys, lock pairings, configuration and a consistent copy of the database (safe "
            "while the gateway runs), encrypted to the owner's public key. Clips only with "
            "--clips. Never overwrites a file."
        ),
    )
    backup.add_argument("--config", required=True, help="path to threshold.toml")
    backup.add_argument("--out", required=True, help="the backup file to write")
    backup.add_argument("--clips", action="store_true", help="include the clips")
    backup.set_defaults(handler=_backup)

    restore = sub.add_parser(
        "restore",
        help="make a gateway directory from a backup (needs the owner's key)",
        description=(
            "Decrypts with the owner's root key, checks every file and the whole audit log, "
            "and only then creates the directory. Run the old gateway no more."
        ),
    )
    restore.add_argument("--in", dest="input", required=True, help="the backup file")
    restore.add_argument("--owner-key", required=True, help="the owner's secret key file")
    restore.add_argument("--dir", required=True, help="the new gateway directory")
    restore.set_defaults(handler=_restore)
