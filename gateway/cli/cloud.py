"""``threshold cloud`` (the relay), ``threshold sync``, ``threshold owner log`` and
``threshold courier receipts upload``: the command-line side of cloud sync (docs/cloud.md).

``owner`` and ``courier`` are groups other modules may own; these commands join them when
they exist and create them otherwise, so this module works on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from cloud.relay import Relay
from cloud.serve import run_relay
from cloud.storage import load_config
from cloud.wire import MalformedMessage, WireReceipt, b64, parse_json, unb64
from gateway.clients import cloud as cloud_client
from gateway.clients.owner_log import verify_and_open
from gateway.errors import GatewayError, UsageError
from gateway.sync.task import CloudSync, SyncConfig
from gateway.trust.owner_mail import MAIL_KINDS, seal_mail
from gateway.trust.seal import Unsealer
from store.checkpoint import CheckpointSigner
from store.db import Store
from store.errors import InvalidEntry


def _bind(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--bind wants HOST:PORT, not {text!r}")
    return host, int(port)


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def _stamp(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# threshold cloud ---------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    host, port = _bind(args.bind)
    asyncio.run(
        run_relay(
            Path(args.dir),
            host,
            port,
            config=None if args.config is None else Path(args.config),
            workers=args.workers,
            metrics_port=args.metrics_port,
            seconds=args.seconds,
            announce=lambda line: print(line, flush=True),
        )
    )
    return 0


def _register(args: argparse.Namespace) -> int:
    gateway_key = cloud_client.parse_public_key(args.gateway_key)
    owner_key = cloud_client.parse_public_key(args.owner_key)

    async def register() -> None:
        relay = Relay(Path(args.dir), storage=load_config(Path(args.dir), _path(args.config)))
        try:
            await relay.register_gateway(args.gateway_id, gateway_key, owner_key)
        finally:
            await relay.close()

    asyncio.run(register())
    print(f"registered gateway {args.gateway_id}")
    return 0


def _witness_log(args: argparse.Namespace) -> int:
    """Make the relay a witness for one more log (its Ed25519 vkey), and print the relay's
    own witness vkey, which the log's operator configures in turn."""

    async def add() -> tuple[str, str]:
        relay = Relay(Path(args.dir), storage=load_config(Path(args.dir), _path(args.config)))
        try:
            return await relay.add_witness_log(args.vkey), relay.witness_vkey
        finally:
            await relay.close()

    try:
        origin, vkey = asyncio.run(add())
    except InvalidEntry as exc:
        raise UsageError(f"--vkey: {exc.message}") from None
    print(f"witnessing {origin}; this witness is {vkey}")
    return 0


def _post_mail(args: argparse.Namespace) -> int:
    owner = cloud_client.read_signing_key(args.owner_key)
    try:
        token = Path(args.token_file).read_text("utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read {args.token_file}: {exc.strerror}") from None
    sealed = seal_mail(cloud_client.parse_public_key(args.gateway_key), args.kind, token)
    body = json.dumps({"sealed": b64(sealed)}).encode()

    async def post() -> Any:
        async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
            path = f"/v1/owner/gateways/{args.gateway}/mailbox"
            return await cloud_client.owner_post(session, args.cloud, owner, path, body)

    print(f"posted {args.kind} as mailbox item {asyncio.run(post())['id']}")
    return 0


# threshold sync ----------------------------------------------------------------------------------


def _from_config(args: argparse.Namespace) -> None:
    """Fill ``--db`` (and for ``now`` the cloud settings) from ``--config`` when given."""
    if args.config is None:
        if args.db is None:
            raise UsageError("give --config threshold.toml or --db")
        return
    from gateway.app.config import load

    try:
        config = load(Path(args.config))
    except GatewayError as exc:
        raise UsageError(f"{args.config}: {exc}") from None
    args.db = str(config.database)
    if hasattr(args, "cloud"):
        args.cloud = args.cloud or config.cloud.url
        args.gateway_id = args.gateway_id or config.gateway_id
        args.gateway_key = args.gateway_key or str(config.key_file)
        if args.pin is None and config.cloud.pin_sha256 is not None:
            args.pin = config.cloud.pin_sha256.hex()
        if args.relay_key is None and config.cloud.relay_public_key is not None:
            args.relay_key = (
                b64(config.cloud.relay_public_key).replace("+", "-").replace("/", "_").rstrip("=")
            )


def _status(args: argparse.Namespace) -> int:
    _from_config(args)
    try:
        conn = sqlite3.connect(Path(args.db).resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open {args.db}: {exc}") from None
    try:
        size = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_entry").fetchone()[0]
        row = conn.execute("SELECT acked_size, updated_ms FROM sync_cursor").fetchone()
    except sqlite3.Error as exc:
        raise UsageError(f"{args.db} is not a Threshold database: {exc}") from None
    finally:
        conn.close()
    acked, acked_ms = (0, None) if row is None else (int(row[0]), int(row[1]))
    status: dict[str, Any] = {}
    status_file = (
        Path(args.status_file) if args.status_file else Path(args.db).with_name("sync-status.json")
    )
    with contextlib.suppress(OSError, json.JSONDecodeError):
        status = json.loads(status_file.read_text("utf-8"))
    print(f"backlog: {size - acked} entries (log {size}, acknowledged {acked})")
    print(f"last success: {_stamp(status.get('last_success_ms') or acked_ms)}")
    queued, delay = status.get("queued"), status.get("queue_delay_s")
    if isinstance(queued, int) and isinstance(delay, (int, float)):
        # The paced upload (docs/privacy.md): what waits for a slot, and for how long.
        over = " (past [cloud] queue_bound)" if status.get("queue_over_bound") else ""
        print(f"upload queue: {queued} entries, the last leaves within {delay:.0f} s{over}")
    error = status.get("last_error")
    print(
        f"last error: {error} at {_stamp(status.get('last_error_ms'))}"
        if error
        else "last error: none"
    )
    return 0


def _now(args: argparse.Namespace) -> int:
    _from_config(args)
    if not (args.cloud and args.gateway_id and args.gateway_key):
        raise UsageError(
            "sync now needs --cloud, --gateway-id and --gateway-key (or --config "
            "with a [cloud] url)"
        )
    key = cloud_client.read_signing_key(args.gateway_key)
    pin = bytes.fromhex(args.pin) if args.pin else None
    relay_key = cloud_client.parse_public_key(args.relay_key) if args.relay_key else None

    async def once() -> int:
        store = await Store.open(args.db, signer=CheckpointSigner(key, args.gateway_id))
        sync = CloudSync(
            store,
            SyncConfig(
                cloud_url=args.cloud,
                gateway_id=args.gateway_id,
                gateway_key=key,
                pin_sha256=pin,
                relay_key=relay_key,
                status_file=Path(args.db).with_name("sync-status.json"),
            ),
        )
        try:
            await sync.run_round()
            return sync.status.uploaded_entries
        finally:
            await sync.stop()
            await store.close()

    print(f"uploaded {asyncio.run(once())} entries")
    return 0


# threshold owner log / courier receipts upload -------------------------------------------------


def _owner_log(args: argparse.Namespace) -> int:
    owner = cloud_client.read_signing_key(args.owner_key)
    unseal = Unsealer(bytes(owner))

    async def fetch() -> tuple[Any, ...]:
        async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
            return await cloud_client.download_log(session, args.cloud, owner, args.gateway)

    entries, document, alarms = asyncio.run(fetch())
    if args.gateway_key:
        gateway_key = cloud_client.parse_public_key(args.gateway_key)
    else:
        gateway_key = unb64(document.get("gateway_key"), "gateway key")
    relay_key = unb64(document.get("relay_key"), "relay key")
    log = verify_and_open(
        entries,
        cloud_client.witnessed_from(document),
        gateway_key,
        unseal,
        str(document.get("relay_id")),
        relay_key,
    )
    for alarm in alarms:
        print(f"ALARM {alarm['code']} at {_stamp(alarm['time_ms'])}: {alarm['detail']}")
    for problem in log.problems:
        print(f"PROBLEM {problem}")
    print(
        f"gateway {args.gateway}: {len(log.entries)} entries"
        + (f" (and {log.padding} padding)" if log.padding else "")
        + f", verified up to {log.verified_size} by signed checkpoints"
    )
    for entry in log.entries:
        body = json.dumps(entry.body, sort_keys=True, ensure_ascii=False)
        print(f"{entry.index:>8}  {_stamp(entry.time_ms)}  {entry.kind:<24} {body}")
    return 1 if alarms or log.problems else 0


def _upload_receipts(args: argparse.Namespace) -> int:
    receipts = []
    for name in args.files:
        # wire.parse_json: a file nested past the JSON parser's depth or holding a number past
        # the digit limit is malformed like any other, not an internal error.
        try:
            data = parse_json(Path(name).read_bytes(), "receipt")
            if isinstance(data, dict) and data.get("pending") is True:
                raise UsageError(
                    f"receipt {name} is pending: the gateway completes it after its next "
                    "upload slot (ask again with done, docs/api.md)"
                )
            full = WireReceipt.from_json(data)
            # Only the checkpoint goes to the relay: no index, no leaf, no proof, so the
            # relay cannot tell which entry, or which visit, the receipt was for
            # (docs/privacy.md).
            receipts.append(WireReceipt(full.gateway, full.checkpoint, ()))
        except OSError as exc:
            raise UsageError(f"cannot read receipt {name}: {exc.strerror}") from None
        except MalformedMessage as exc:
            raise UsageError(f"cannot read receipt {name}: {exc.message}") from None

    async def upload() -> int:
        failed = 0
        async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
            for name, receipt in zip(args.files, receipts, strict=True):
                url = args.cloud.rstrip("/") + "/v1/receipts"
                try:
                    async with session.post(url, json=receipt.to_json()) as response:
                        data = await response.json(content_type=None)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    raise cloud_client.CloudUnavailable(f"cannot reach the relay: {exc}") from None
                if response.status == 200:
                    print(f"{name}: witnessed checkpoint of size {data['witnessed']}")
                else:
                    failed += 1
                    print(
                        f"{name}: refused: {data.get('code')}: {data.get('detail')}",
                        file=sys.stderr,
                    )
        return failed

    return 1 if asyncio.run(upload()) else 0


# Registration ----------------------------------------------------------------------------------


def _group(sub: Any, name: str, help_text: str) -> Any:
    """The subcommands of group ``name``: the existing group's, or a new group's."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text)
        group = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
        group.required = True
        return group
    if parser.subcommands is None:
        raise RuntimeError(f"command group {name} has no subcommands")
    return parser.subcommands


def register(sub: Any) -> None:
    cloud = sub.add_parser("cloud", help="the reference cloud relay")
    csub = cloud.add_subparsers(dest="cloud_command", metavar="COMMAND")
    csub.required = True
    run = csub.add_parser("run", help="run the relay (until SIGINT/SIGTERM)")
    run.add_argument("--dir", required=True, help="the relay's data directory")
    run.add_argument("--bind", default="127.0.0.1:8787", help="HOST:PORT (default 127.0.0.1:8787)")
    run.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    run.add_argument(
        "--config", help="the relay's relay.toml (default: DIR/relay.toml if it exists)"
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="relay processes sharing the port (more than 1 needs PostgreSQL; docs/scale.md)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus ingest metrics on 127.0.0.1:PORT/metrics (0: a free port)",
    )
    run.set_defaults(handler=_run)
    reg = csub.add_parser("register-gateway", help="register a gateway's key for its owner")
    reg.add_argument("--dir", required=True)
    reg.add_argument("--config", help="the relay's relay.toml (default: DIR/relay.toml)")
    reg.add_argument("--gateway-id", required=True)
    reg.add_argument("--gateway-key", required=True, help="public key (base64url) or its file")
    reg.add_argument("--owner-key", required=True, help="owner public key (base64url) or file")
    reg.set_defaults(handler=_register)
    wlog = csub.add_parser("witness-log", help="cosign one more log as a C2SP witness")
    wlog.add_argument("--dir", required=True)
    wlog.add_argument("--config", help="the relay's relay.toml (default: DIR/relay.toml)")
    wlog.add_argument("--vkey", required=True, help="the log's Ed25519 verifier key (vkey)")
    wlog.set_defaults(handler=_witness_log)
    mail = csub.add_parser("post", help="post an owner-signed revocation list or approval")
    mail.add_argument("--cloud", required=True)
    mail.add_argument("--owner-key", required=True, help="the owner's secret key file")
    mail.add_argument("--gateway", required=True)
    mail.add_argument(
        "--gateway-key", required=True, help="the gateway's public key (mail is sealed to it)"
    )
    mail.add_argument("--kind", required=True, choices=MAIL_KINDS)
    mail.add_argument("--token-file", required=True)
    mail.set_defaults(handler=_post_mail)

    sync = sub.add_parser("sync", help="cloud sync of the audit log")
    ssub = sync.add_subparsers(dest="sync_command", metavar="COMMAND")
    ssub.required = True
    status = ssub.add_parser("status", help="backlog, last success, last error")
    status.add_argument("--config", help="the gateway's threshold.toml")
    status.add_argument("--db", help="the gateway's database (instead of --config)")
    status.add_argument("--status-file", help="default: sync-status.json beside the database")
    status.set_defaults(handler=_status)
    now = ssub.add_parser(
        "now", help="run one sync round now (safe beside the running service: overlap is a no-op)"
    )
    now.add_argument("--config", help="the gateway's threshold.toml (db, key, [cloud])")
    now.add_argument("--db")
    now.add_argument("--cloud")
    now.add_argument("--gateway-id")
    now.add_argument("--gateway-key", help="the gateway's secret key file")
    now.add_argument("--pin", help="SHA-256 of the relay's certificate (hex)")
    now.add_argument("--relay-key", help="the relay's public key, to check its cosignatures")
    now.set_defaults(handler=_now)

    owner = _group(sub, "owner", "owner commands")
    log = owner.add_parser("log", help="download, verify and decrypt the history from the cloud")
    log.add_argument("--cloud", required=True)
    log.add_argument("--owner-key", required=True, help="the owner's secret key file")
    log.add_argument("--gateway", required=True, help="the gateway id")
    log.add_argument("--gateway-key", help="the gateway's public key (default: as registered)")
    log.set_defaults(handler=_owner_log)

    courier = _group(sub, "courier", "the reference courier client")
    receipts = courier.add_parser("receipts", help="receipts kept from visits")
    rsub = receipts.add_subparsers(dest="receipts_command", metavar="COMMAND")
    rsub.required = True
    upload = rsub.add_parser("upload", help="send saved receipts to the cloud")
    upload.add_argument("--cloud", required=True)
    upload.add_argument("files", nargs="+", metavar="RECEIPT")
    upload.set_defaults(handler=_upload_receipts)
