"""``threshold audit``: verify, read and export the tamper-evident audit log; sign checkpoints.

* ``verify --db PATH [--gateway-pub B64] [--commit-key FILE] [--no-clip-files] [--jobs N]``:
  one JSON report; exit 0 when the whole log holds. Every readable row is checked against
  its leaf (the commitment key beside the database), and every clip file against its entry.
  A log of 65,536 entries or more is checked by ``--jobs`` processes (default: the CPUs this
  process may use, at most 4), by index range; the checks and the report are the same.
* ``tail --db PATH [-n N] [--follow]``: the last entries as human-readable lines, each
  marked ``[unverified: ...]`` when its readable copy does not match its leaf.
* ``export --db PATH [--since INDEX]``: JSON Lines, each entry with its inclusion proof.
* ``checkpoint --db PATH --key FILE [--origin ID]``: sign a checkpoint now.

Read commands open the database read-only, so they are safe next to a running gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import sqlite3
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.errors import UsageError
from store import audit_log
from store.audit_log import CheckedEntry
from store.checkpoint import CheckpointSigner
from store.errors import InvalidEntry
from store.migrations import schema_version
from store.sqlite_errors import from_sqlite
from store.verify import (
    default_workers,
    export_records,
    open_read_only,
    reading_key,
    verify_log,
)


def decode_b64(text: str, what: str) -> bytes:
    """Base64, standard or URL-safe, padded or not."""
    cleaned = text.strip()
    try:
        return base64.urlsafe_b64decode(
            cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4)
        )
    except (binascii.Error, ValueError):
        raise UsageError(f"{what} is not base64") from None


def load_gateway_secret(path: str) -> bytes:
    """The gateway key file: base64url (unpadded) of a 64-byte secret key or 32-byte seed.

    The file must not be readable by group or others (mode 0600).
    """
    file = Path(path)
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the key file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"the key file {path} is readable by others; chmod 600 it")
    secret = decode_b64(text, f"the key file {path}")
    if len(secret) not in (32, 64):
        raise UsageError(f"the key file {path} holds {len(secret)} bytes, not 32 or 64")
    return secret


def _gateway_pub(args: argparse.Namespace) -> bytes | None:
    if args.gateway_pub is None:
        return None
    key = decode_b64(args.gateway_pub, "--gateway-pub")
    if len(key) != 32:
        raise UsageError(f"--gateway-pub must be a 32-byte Ed25519 key, not {len(key)} bytes")
    return key


def _open(path: str) -> sqlite3.Connection:
    if not Path(path).is_file():
        raise UsageError(f"no database at {path}")
    return open_read_only(path)


def _verify(args: argparse.Namespace) -> int:
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        raise UsageError("--jobs must be 1 to 64")
    key = _gateway_pub(args)
    conn = _open(args.db)
    key_file = None if args.commit_key is None else Path(args.commit_key)
    try:
        report = verify_log(
            conn,
            key,
            key_file=key_file,
            clip_files=not args.no_clip_files,
            workers=args.jobs if args.jobs is not None else default_workers(),
        )
    finally:
        conn.close()
    print(json.dumps(report.to_json()))
    return 0 if report.ok else 1


def _line(checked: CheckedEntry) -> str:
    stored = checked.stored
    entry = stored.entry
    when = datetime.fromtimestamp(entry.time_ms / 1000, UTC).isoformat(timespec="milliseconds")
    body = json.dumps(entry.body, sort_keys=True, ensure_ascii=False)
    sealed = " [sealed]" if stored.sealed else ""
    verdict = checked.verdict
    if not verdict.verified:
        what = verdict.field or verdict.status.value
        sealed += f" [unverified: {what}: {verdict.detail}]"
    return f"{entry.index:>8}  {when.replace('+00:00', 'Z')}  {entry.kind:<20} {body}{sealed}"


def _tail(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise UsageError("-n must be >= 0")
    conn = _open(args.db)
    try:
        key = reading_key(conn)
        next_index = max(0, audit_log.tree_size(conn) - args.n)
        while True:
            for checked in audit_log.iter_checked(conn, key, next_index):
                print(_line(checked), flush=True)
                next_index = checked.stored.entry.index + 1
            if not args.follow:
                break
            # A reader polls: SQLite has no cross-process change notification.
            time.sleep(0.5)
    finally:
        conn.close()
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.since < 0:
        raise UsageError("--since must be >= 0")
    key = _gateway_pub(args)
    conn = _open(args.db)
    try:
        for record in export_records(conn, args.since, key, reading_key(conn)):
            print(json.dumps(record, ensure_ascii=False, sort_keys=True))
    finally:
        conn.close()
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    from store.db import Store

    secret = load_gateway_secret(args.key)
    if not Path(args.db).is_file():
        raise UsageError(f"no database at {args.db}")
    conn = open_read_only(args.db, require_schema=False)
    try:
        identity = audit_log.gateway_identity(conn) if schema_version(conn) > 0 else None
    finally:
        conn.close()
    origin = args.origin or (identity[0] if identity else None)
    if origin is None:
        raise UsageError("this database has no gateway id yet; pass --origin")
    try:
        signer = CheckpointSigner.from_secret(secret, origin)
    except InvalidEntry as exc:
        raise UsageError(exc.message) from None

    async def sign() -> dict[str, Any]:
        store = await Store.open(args.db, signer=signer, checkpoint_every=0)
        try:
            return (await store.checkpoint()).to_json()
        finally:
            await store.close()

    print(json.dumps(asyncio.run(sign())))
    return 0


def _translating(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """SQLite failures while reading become the store's typed errors (exit 1, one line)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except sqlite3.Error as exc:
            raise from_sqlite(exc, f"audit {args.audit_command}") from None

    return run


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="verify, read and export the audit log")
    commands = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    commands.required = True

    verify = commands.add_parser("verify", help="check every entry, the tree and checkpoints")
    verify.add_argument("--db", required=True, help="the gateway database")
    verify.add_argument("--gateway-pub", help="the gateway public key (base64); overrides the DB")
    verify.add_argument(
        "--commit-key", help="the commitment key file (default: DB path + .audit-key)"
    )
    verify.add_argument(
        "--no-clip-files",
        action="store_true",
        help="check the clip index against the log but do not hash the clip files",
    )
    verify.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="processes checking a large log's entries (default: the CPUs, at most 4)",
    )
    verify.set_defaults(handler=_translating(_verify))

    tail = commands.add_parser("tail", help="print the last entries")
    tail.add_argument("--db", required=True)
    tail.add_argument("-n", type=int, default=20, help="how many entries (default 20)")
    tail.add_argument("--follow", action="store_true", help="keep printing new entries")
    tail.set_defaults(handler=_translating(_tail))

    export = commands.add_parser("export", help="JSON Lines with inclusion proofs")
    export.add_argument("--db", required=True)
    export.add_argument("--since", type=int, default=0, help="first index to export")
    export.add_argument("--gateway-pub", help="the public key to name in the output (base64)")
    export.set_defaults(handler=_translating(_export))

    checkpoint = commands.add_parser("checkpoint", help="sign a checkpoint of the log now")
    checkpoint.add_argument("--db", required=True)
    checkpoint.add_argument("--key", required=True, help="the gateway key file (mode 0600)")
    checkpoint.add_argument("--origin", help="the gateway id, if the DB has none yet")
    checkpoint.set_defaults(handler=_translating(_checkpoint))
