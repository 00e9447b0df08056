"""``threshold owner``: the reference owner client (approve/deny, events, lock/unlock,
``clock reset``: a time floor found ahead of the gateway's clock set back to it, and the owner
app's devices: enroll, devices, rename-device, revoke-device; and ``household-issuer``, the
key that signs visitors' tickets, certified once by the root key: docs/visitors.md).

Every request is signed with the owner key for this gateway's id and TLS key (docs/api.md,
"Request signature"), and the gateway is always authenticated first: ``--pin-fingerprint``,
or the known-gateways file with trust on first use (``gateway.cli.gateway_trust``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.cli import gateway_trust
from gateway.errors import UsageError

APPROVAL_LIFETIME = timedelta(minutes=5)


def _owner_key(path: str) -> Any:
    from gateway.app.identity import KeyFileError, load_signing_key

    try:
        return load_signing_key(Path(path))
    except KeyFileError as exc:
        raise UsageError(exc.message) from None


async def _decide(args: argparse.Namespace, approve: bool) -> int:
    from gateway.trust.approval import Approval, Decision, sign_approval

    owner = _owner_key(args.owner_key)
    client, info = await gateway_trust.open_gateway(args)
    async with client:
        sessions = (await client.owner(owner, "GET", "/v1/owner/sessions"))["sessions"]
        match = [s for s in sessions if s["session"] == args.session]
        if not match:
            raise UsageError(f"no session {args.session} on this gateway")
        now = datetime.now(UTC)
        approval = Approval(
            aud=str(info["gateway_id"]),
            session=args.session,
            jti=str(match[0]["ticket_id"]),
            decision=Decision.APPROVE if approve else Decision.DENY,
            iat=now,
            exp=now + APPROVAL_LIFETIME,
        )
        token = sign_approval(approval, bytes(owner) + bytes(owner.verify_key))
        view = await client.owner(owner, "POST", "/v1/owner/approvals", {"approval": token})
        print(json.dumps(view))
        return 0


async def _events(args: argparse.Namespace) -> int:
    owner = _owner_key(args.owner_key)
    client, _info = await gateway_trust.open_gateway(args)
    async with client:
        path = f"/v1/owner/events?since={args.since}&limit={args.limit}"
        events = (await client.owner(owner, "GET", path))["events"]
    # Only rows the gateway checked against the signed log are shown as facts; any other row
    # is printed, flagged, and counted on stderr, never passed off silently.
    unverified = 0
    for event in events:
        if event.get("verified") is not True:
            unverified += 1
        print(json.dumps(event, sort_keys=True))
    shown = len(events)
    if unverified:
        print(
            f"WARNING: {unverified} of {shown} entries do not verify against the signed log; "
            'they are marked "verified": false',
            file=sys.stderr,
        )
    else:
        print(f"{shown} entries, each verified against the signed log", file=sys.stderr)
    return 0


async def _lock(args: argparse.Namespace, action: str) -> int:
    owner = _owner_key(args.owner_key)
    client, _info = await gateway_trust.open_gateway(args)
    async with client:
        body = {"door": args.door, "action": action}
        print(json.dumps(await client.owner(owner, "POST", "/v1/owner/lock", body)))
    return 0


async def _enroll(args: argparse.Namespace) -> int:
    owner = _owner_key(args.owner_key)
    body = {"role": args.role}
    if args.name:
        body["name"] = args.name
    client, _info = await gateway_trust.open_gateway(args)
    async with client:
        made = await client.owner(owner, "POST", "/v1/owner/enrollments", body, expect=(201,))
    link = str(made["link"])
    expires = datetime.fromtimestamp(int(made["expires_ms"]) / 1000, UTC)
    print(link)
    if not args.no_qr:
        print(terminal_qr(link))
    print(
        f"one-time link for a {made['role']} device ({made['name']}), "
        f"valid until {expires:%H:%M:%S} UTC: open it on the phone or laptop to enroll",
        flush=True,
    )
    return 0


async def _household(args: argparse.Namespace) -> int:
    """Show the household issuer; with ``--certify``, sign its certificate with the root key
    (the only time the root key is needed for visitors: the app issues within it)."""
    from gateway.owner.household import household_certificate
    from gateway.trust.base64url import b64u_decode
    from gateway.trust.certificate import sign_certificate
    from gateway.trust.schedule import parse_hours

    owner = _owner_key(args.owner_key)
    client, info = await gateway_trust.open_gateway(args)
    async with client:
        shown = await client.owner(owner, "GET", "/v1/owner/household-issuer")
        if args.certify:
            doors = tuple(args.door or info.get("doors") or ())
            hours = parse_hours(args.hours) if args.hours else None
            cert = household_certificate(
                b64u_decode(str(shown["public_key"])),
                str(info["gateway_id"]),
                tuple(str(d) for d in doors),
                datetime.now(UTC),
                days=args.days,
                hours=hours,
            )
            token = sign_certificate(cert, bytes(owner) + bytes(owner.verify_key))
            body = {"certificate": token}
            shown = await client.owner(owner, "POST", "/v1/owner/household-issuer", body)
    print(f"household issuer key: {shown['public_key']}")
    if not shown["certificate"]:
        print(
            "not certified yet: run this again with --certify (and --door NAME for each door "
            "visitors may open)",
            file=sys.stderr,
        )
        return 0
    for line in shown["allowances"]:
        print(line)
    return 0


def terminal_qr(text: str) -> str:
    """``text`` as a QR code drawn with block characters (for a phone's camera)."""
    import io

    import segno

    out = io.StringIO()
    segno.make(text, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


async def _devices(args: argparse.Namespace, action: str) -> int:
    owner = _owner_key(args.owner_key)
    client, _info = await gateway_trust.open_gateway(args)
    async with client:
        if action == "list":
            for device in (await client.owner(owner, "GET", "/v1/owner/devices"))["devices"]:
                print(json.dumps(device, sort_keys=True))
            return 0
        path = f"/v1/owner/devices/{args.device}/{action}"
        body: dict[str, Any] = {}
        if action == "rename":
            body = {"name": args.name}
        elif action == "permission":
            body = {"may_open": args.may_open == "yes"}
        print(json.dumps(await client.owner(owner, "POST", path, body)))
    return 0


async def _clock_reset(args: argparse.Namespace) -> int:
    owner = _owner_key(args.owner_key)
    client, _info = await gateway_trust.open_gateway(args)
    async with client:
        answer = await client.owner(owner, "POST", "/v1/owner/clock/reset")
    old = _iso(int(answer["old_floor_ms"]))
    if answer["reset"]:
        print(f"time floor reset from {old} to {_iso(int(answer['floor_ms']))} (recorded)")
    else:
        print(f"time floor {old} is not ahead of the gateway's clock: nothing to reset")
    return 0


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def register(sub: Any) -> None:
    owner = sub.add_parser("owner", help="the reference owner client")
    osub = owner.add_subparsers(dest="owner_command", metavar="ACTION")
    osub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--gateway", required=True, help="the gateway's URL")
        p.add_argument("--owner-key", required=True, help="the owner's secret key file")
        gateway_trust.add_arguments(p)

    for name, approve in (("approve", True), ("deny", False)):
        p = osub.add_parser(name, help=f"{name} a session awaiting the owner")
        p.add_argument("session")
        common(p)
        p.set_defaults(handler=lambda a, ap=approve: asyncio.run(_decide(a, ap)))
    ev = osub.add_parser("events", help="print audit log entries")
    ev.add_argument("--since", type=int, default=0)
    ev.add_argument("--limit", type=int, default=100)
    common(ev)
    ev.set_defaults(handler=lambda a: asyncio.run(_events(a)))
    for action in ("lock", "unlock"):
        p = osub.add_parser(action, help=f"{action} a door by hand (recorded)")
        p.add_argument("--door", required=True)
        common(p)
        p.set_defaults(handler=lambda a, act=action: asyncio.run(_lock(a, act)))
    en = osub.add_parser("enroll", help="a one-time link (and QR code) to enroll an app device")
    en.add_argument("--role", choices=("owner", "member"), default="owner")
    en.add_argument("--name", help="the device's name (shown in the app and the audit log)")
    en.add_argument("--no-qr", action="store_true", help="print the link only")
    common(en)
    en.set_defaults(handler=lambda a: asyncio.run(_enroll(a)))
    dv = osub.add_parser("devices", help="list the app's devices")
    common(dv)
    dv.set_defaults(handler=lambda a: asyncio.run(_devices(a, "list")))
    rv = osub.add_parser("revoke-device", help="revoke an app device (signed out at once)")
    rv.add_argument("device")
    common(rv)
    rv.set_defaults(handler=lambda a: asyncio.run(_devices(a, "revoke")))
    pm = osub.add_parser(
        "allow-device",
        help="allow a member's app device to open doors (approve, deny, unlock), or stop it",
    )
    pm.add_argument("device")
    pm.add_argument("--may-open", choices=("yes", "no"), required=True)
    common(pm)
    pm.set_defaults(handler=lambda a: asyncio.run(_devices(a, "permission")))
    rn = osub.add_parser("rename-device", help="rename an app device")
    rn.add_argument("device")
    rn.add_argument("name")
    common(rn)
    rn.set_defaults(handler=lambda a: asyncio.run(_devices(a, "rename")))
    hh = osub.add_parser(
        "household-issuer",
        help="show the household issuer (visitors' tickets); --certify signs its caps once",
    )
    hh.add_argument("--certify", action="store_true", help="sign a (new) certificate")
    hh.add_argument(
        "--door", action="append", help="a door visitors may open (repeat; default: every door)"
    )
    hh.add_argument("--hours", help="every day's hours visitors may come, e.g. 07:00-21:00")
    hh.add_argument("--days", type=int, default=365, help="the certificate's life (days)")
    common(hh)
    hh.set_defaults(handler=lambda a: asyncio.run(_household(a)))
    clock = osub.add_parser("clock", help="the gateway's time floor")
    csub = clock.add_subparsers(dest="clock_command", metavar="ACTION")
    csub.required = True
    reset = csub.add_parser(
        "reset",
        help="set a time floor that is ahead of the gateway's clock back to the clock "
        "(signed, recorded; only when you know the gateway's clock is right)",
    )
    common(reset)
    reset.set_defaults(handler=lambda a: asyncio.run(_clock_reset(a)))
