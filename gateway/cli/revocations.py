"""``threshold revocations sign``: the owner's revocation lists, and the state that makes the
next list carry everything revoked before.

A gateway adds every list it accepts to what it holds, so a list need not repeat earlier
entries for the gateway that got them; it still does, for the gateway that missed one. The
owner's side therefore keeps a state file (JSON, mode 0600, replaced atomically): the last
``seq`` signed and, per gateway, what was revoked there and until when. Each ``sign`` for a
gateway adds its new entries, drops those long expired, and signs everything left for that
gateway, with the next ``seq``. The state is written before the list is printed: a list that
was shown is always remembered.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.cli import inputs
from gateway.errors import UsageError
from gateway.trust.claims import IDENTIFIER, decode_object, format_time, parse_time
from gateway.trust.reasons import TicketError
from gateway.trust.revocation import (
    LONGEST_VALIDITY,
    MAX_SEQ,
    Revocation,
    RevocationList,
    RevokedKind,
    key_text,
    sign_revocations,
)
from groundwork.files import write_file

STATE_FORMAT = 1
MAX_STATE_BYTES = 4 * 1024 * 1024
# Entries are dropped from the state this long after their ``until``, like the gateway does.
FORGET_AFTER = timedelta(days=1)


@dataclass
class RevocationState:
    """What the owner has revoked, per gateway, and the last list number used."""

    seq: int = 0
    revoked: dict[str, set[Revocation]] = field(default_factory=dict)

    def add(self, gateway: str, entries: set[Revocation]) -> None:
        held = {(e.kind, e.value): e for e in self.revoked.get(gateway, set())}
        for entry in entries:
            old = held.get((entry.kind, entry.value))
            if old is None or entry.until > old.until:
                held[(entry.kind, entry.value)] = entry
        self.revoked[gateway] = set(held.values())

    def forget_expired(self, now: datetime) -> None:
        for gateway, entries in list(self.revoked.items()):
            kept = {e for e in entries if e.until + FORGET_AFTER > now}
            if kept:
                self.revoked[gateway] = kept
            else:
                del self.revoked[gateway]

    def to_json(self) -> dict[str, Any]:
        revoked: dict[str, dict[str, dict[str, str]]] = {}
        for gateway, entries in sorted(self.revoked.items()):
            kinds: dict[str, dict[str, str]] = {kind.value: {} for kind in RevokedKind}
            for e in sorted(entries, key=lambda e: (e.kind, e.value)):
                kinds[e.kind.value][e.value] = format_time(e.until)
            revoked[gateway] = kinds
        return {"format": STATE_FORMAT, "seq": self.seq, "revoked": revoked}


def _bad_state(path: Path, why: str) -> UsageError:
    return UsageError(f"{path} is not a revocation state file ({why})")


def load_state(path: Path) -> RevocationState:
    """The state in ``path``; an empty state when the file does not exist yet."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return RevocationState()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    if len(raw) > MAX_STATE_BYTES:
        raise _bad_state(path, "too large")
    try:
        value = decode_object(raw)
    except TicketError as exc:
        raise _bad_state(path, exc.message) from exc
    seq, revoked = value.get("seq"), value.get("revoked")
    if value.get("format") != STATE_FORMAT or set(value) != {"format", "seq", "revoked"}:
        raise _bad_state(path, f"format must be {STATE_FORMAT}")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ or not isinstance(revoked, dict):
        raise _bad_state(path, "bad seq or revoked")
    state = RevocationState(seq)
    for gateway, kinds in revoked.items():
        if IDENTIFIER.fullmatch(gateway) is None or not isinstance(kinds, dict):
            raise _bad_state(path, f"bad gateway {gateway[:40]!r}")
        entries: set[Revocation] = set()
        for kind_name, values in kinds.items():
            if kind_name not in {k.value for k in RevokedKind} or not isinstance(values, dict):
                raise _bad_state(path, f"bad kind {kind_name[:40]!r}")
            for name, until in values.items():
                if not isinstance(until, str):
                    raise _bad_state(path, "an until is not a time")
                try:
                    entries.add(Revocation(RevokedKind(kind_name), name, parse_time(until)))
                except TicketError as exc:
                    raise _bad_state(path, exc.message) from exc
        state.revoked[gateway] = entries
    return state


def save_state(path: Path, state: RevocationState) -> None:
    """Replace ``path`` atomically with ``state`` (mode 0600): a crash leaves the old state or
    the new one (``groundwork.files.write_file``)."""
    data = (json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n").encode()
    try:
        write_file(path, data, replace=True)
    except OSError as exc:
        raise UsageError(f"cannot write the revocation state {path}: {exc.strerror}") from exc


def default_state_path(owner_key: str) -> Path:
    return Path(owner_key).with_suffix(".revocations.json")


def _sign(args: argparse.Namespace) -> int:
    owner = inputs.read_secret_key(args.owner_key)
    if IDENTIFIER.fullmatch(args.gateway) is None:
        raise UsageError("--gateway must be a gateway id")
    now = inputs.moment(None, "now")
    until = inputs.moment(args.until, "--until") if args.until else now + LONGEST_VALIDITY
    if until <= now:
        raise UsageError("--until must be in the future")
    path = Path(args.state) if args.state else default_state_path(args.owner_key)
    state = load_state(path)
    seq = state.seq + 1 if args.seq is None else args.seq
    if seq <= state.seq:
        raise UsageError(f"--seq must be above {state.seq}, the last list signed ({path})")
    new = {Revocation(RevokedKind.TICKET, jti, until) for jti in args.jti}
    new |= {Revocation(RevokedKind.HOLDER, sub, until) for sub in args.subject}
    new |= {
        Revocation(RevokedKind.KEY, key_text(inputs.public_key(k, "--key")), until)
        for k in args.key
    }
    state.forget_expired(now)
    state.add(args.gateway, new)
    entries = frozenset(state.revoked.get(args.gateway, set()))
    try:
        rl = RevocationList(frozenset({args.gateway}), seq, now, entries)
        token = sign_revocations(rl, owner)
    except TicketError as exc:
        raise UsageError(exc.message) from exc
    state.seq = seq
    save_state(path, state)
    print(token)
    print(
        f"revocation list {seq} for {args.gateway}: {len(entries)} entries "
        f"({len(new)} named now); state kept in {path}",
        file=sys.stderr,
    )
    return 0


def register(sub: Any) -> None:
    revocations = sub.add_parser("revocations", help="owner-signed revocation lists")
    commands = revocations.add_subparsers(dest="revocations_command", metavar="COMMAND")
    commands.required = True
    sign = commands.add_parser(
        "sign",
        help="print a signed revocation list for one gateway, carrying all revoked there",
    )
    sign.add_argument("--owner-key", required=True, metavar="FILE")
    sign.add_argument("--gateway", required=True, metavar="GW", help="the gateway it is for")
    sign.add_argument("--jti", action="append", default=[], metavar="ID")
    sign.add_argument("--subject", action="append", default=[], metavar="NAME")
    sign.add_argument("--key", action="append", default=[], metavar="B64")
    sign.add_argument(
        "--until",
        metavar="T",
        help="keep what is named now revoked until T (default: 407 days, the longest a "
        "certificate and a ticket under it can stay valid)",
    )
    sign.add_argument("--seq", type=int, metavar="N", help="default: one above the last")
    sign.add_argument(
        "--state",
        metavar="FILE",
        help="what was revoked before (default: beside the owner key, KEY.revocations.json "
        "for KEY.key)",
    )
    sign.set_defaults(handler=_sign)
