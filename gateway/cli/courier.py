"""``threshold courier open``: the reference courier client (what a courier's phone does).

Fetches the gateway's identity, a challenge, signs the proof with the holder key, presents
the ticket, waits (``--done-after``) and says done with a fresh proof. Each step is printed
with its timing. Exit 0 when let in and out again; exit 1 with the problem code when denied.
The gateway is always authenticated first (``gateway.cli.gateway_trust``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from gateway.cli import gateway_trust
from gateway.errors import UsageError
from groundwork.files import write_file

APPROVAL_WAIT_S = 330.0
#: How often a pending receipt is asked for again (each ask is a fresh challenge and proof).
RECEIPT_POLL_S = 5.0


def _read_ticket(value: str) -> str:
    path = Path(value)
    if not value.startswith("v4.public.") and path.is_file():
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise UsageError(f"--ticket {value}: {exc.strerror}") from None
    if not value.startswith("v4.public."):
        raise UsageError("--ticket: neither a v4.public token nor a readable file")
    return value.strip()


def _step(started: float, what: str) -> None:
    print(f"[{(time.perf_counter() - started) * 1000:8.1f} ms] {what}", flush=True)


async def _open(args: argparse.Namespace) -> int:
    from gateway.app.identity import KeyFileError, load_signing_key
    from gateway.clients.lan import ApiProblem, unverified_claims

    token = _read_ticket(args.ticket)
    try:
        holder = load_signing_key(Path(args.holder_key))
    except KeyFileError as exc:
        raise UsageError(exc.message) from None
    claims = unverified_claims(token)
    jti = str(claims.get("jti", ""))
    started = time.perf_counter()
    client, info = await gateway_trust.open_gateway(args)
    async with client:
        try:
            gateway_id = str(info["gateway_id"])
            _step(
                started,
                f"gateway {gateway_id} (api {info.get('api_version')}, "
                f"TLS key {client.key_fingerprint})",
            )
            reply = await client.open(
                gateway_id=gateway_id,
                ticket=token,
                jti=jti,
                holder=holder,
                door=args.door,
                package_code=args.package_code,
            )
            session_id = str(reply.body["session"])
            _step(started, f"access {reply.status}: session {session_id} {reply.body['state']}")
            state = str(reply.body["state"])
            if state == "awaiting_approval":
                state = await _await_owner(client, session_id, started)
                if state != "open":
                    print("threshold: approval_denied: the owner did not approve", flush=True)
                    return 1
            _step(started, f"door open; done in {args.done_after:g} s")
            await asyncio.sleep(args.done_after)
            view = await client.done(
                gateway_id=gateway_id, session_id=session_id, jti=jti, holder=holder
            )
            _step(started, f"done: session {view['state']}")
            if args.save_receipt:
                view = await _complete_receipt(
                    client, view, args, gateway_id, session_id, jti, holder, started
                )
            if args.save_receipt and isinstance(view.get("receipt"), dict):
                receipt = dict(view["receipt"])
                if client.last_open_proof is not None:
                    # The visitor's secret for the visit tag (docs/api.md, "Receipts").
                    receipt["visit_proof"] = base64.b64encode(client.last_open_proof).decode()
                _save_receipt(args.save_receipt, receipt)
                _step(started, f"receipt saved to {args.save_receipt}")
            return 0 if view["state"] == "closed" else 1
        except ApiProblem as p:
            _step(started, f"refused: {p.code} ({p.detail})")
            print(f"threshold: {p.code}", flush=True)
            return 1


async def _complete_receipt(
    client: Any,
    view: dict[str, Any],
    args: argparse.Namespace,
    gateway_id: str,
    session_id: str,
    jti: str,
    holder: Any,
    started: float,
) -> dict[str, Any]:
    """A gateway with paced uploads answers ``done`` with a pending receipt (docs/api.md,
    "Receipts"): ask again, up to ``--receipt-wait`` seconds, until its upload slot closed."""
    deadline = time.monotonic() + args.receipt_wait
    while _pending(view) and time.monotonic() < deadline:
        _step(started, "receipt pending: waiting for the gateway's next upload slot")
        await asyncio.sleep(min(RECEIPT_POLL_S, max(0.0, deadline - time.monotonic())))
        view = await client.done(
            gateway_id=gateway_id, session_id=session_id, jti=jti, holder=holder
        )
    if _pending(view):
        _step(started, "receipt still pending: saved as is (it cannot be uploaded yet)")
    return view


def _pending(view: dict[str, Any]) -> bool:
    receipt = view.get("receipt")
    return isinstance(receipt, dict) and receipt.get("pending") is True


def _save_receipt(path: str, receipt: dict[str, Any]) -> None:
    """Keep the receipt for ``threshold courier receipts upload`` (docs/cloud.md). Mode
    0600: ``visit_proof`` is the visitor's secret."""
    try:
        write_file(Path(path), json.dumps(receipt).encode("utf-8"), replace=True)
    except OSError as exc:
        raise UsageError(f"cannot save the receipt to {path}: {exc.strerror}") from None


async def _await_owner(client: Any, session_id: str, started: float) -> str:
    _step(started, "waiting for the owner's approval")
    deadline = time.monotonic() + APPROVAL_WAIT_S
    while time.monotonic() < deadline:
        view = await client.session(session_id)
        if view["state"] != "awaiting_approval":
            _step(started, f"owner decided: {view['state']}")
            return str(view["state"])
        await asyncio.sleep(0.5)  # the API has no push channel; a phone polls the same way
    return "timeout"


def _run(args: argparse.Namespace) -> int:
    if args.done_after < 0:
        raise UsageError("--done-after must be >= 0")
    if args.receipt_wait < 0:
        raise UsageError("--receipt-wait must be >= 0")
    return asyncio.run(_open(args))


def register(sub: Any) -> None:
    courier = sub.add_parser("courier", help="the reference courier client")
    csub = courier.add_subparsers(dest="courier_command", metavar="ACTION")
    csub.required = True
    op = csub.add_parser("open", help="open a door with a ticket, then say done")
    op.add_argument("--gateway", required=True, help="the gateway's URL (https://HOST:PORT)")
    op.add_argument("--ticket", required=True, help="the ticket token, or a file holding it")
    op.add_argument("--holder-key", required=True, help="the holder's secret key file")
    op.add_argument("--door", required=True, help="the door to open")
    op.add_argument("--package-code", help="the package code (delivery tickets)")
    op.add_argument("--done-after", type=float, default=5.0, help="seconds inside (default 5)")
    gateway_trust.add_arguments(op)
    op.add_argument("--save-receipt", metavar="FILE", help="keep the visit's receipt here")
    op.add_argument(
        "--receipt-wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="with --save-receipt: how long to wait for a pending receipt (default 120)",
    )
    op.set_defaults(handler=_run)
