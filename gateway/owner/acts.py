"""What an owner device may do, and the act a WebAuthn challenge commits to. Pure.

A door-opening act (approve a visitor, unlock by hand) is authorised by a fresh,
user-verified passkey assertion whose challenge is :func:`act_challenge`: a hash over the
device, the act and a server nonce. The authenticator signs over that challenge (inside
``clientDataJSON``), so an assertion obtained for "approve session X" can never be presented
for "unlock door Y", from another device, or twice (the nonce is taken once).
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gateway.owner.errors import BadAppRequest

ACT_CONTEXT = b"threshold-owner-act-v1\n"
MAX_TARGET = 64


class Role(enum.StrEnum):
    """``owner`` does everything; ``member`` (the household) watches and locks, and opens
    doors only if the owner allowed that device."""

    OWNER = "owner"
    MEMBER = "member"


class ActKind(enum.StrEnum):
    SIGN_IN = "sign_in"
    APPROVE = "approve"
    DENY = "deny"
    UNLOCK = "unlock"
    LOCK = "lock"
    #: Invite a visitor (docs/visitors.md): the target is the terms' digest, so the passkey
    #: signs over exactly these terms.
    INVITE = "invite"


#: Acts that let someone in: each needs a fresh user-verified assertion over the act.
OPENS_DOOR = frozenset({ActKind.APPROVE, ActKind.UNLOCK})
#: Acts done with an assertion (the door-opening ones, the refusal of a visitor, sign-in).
NEEDS_ASSERTION = OPENS_DOOR | {ActKind.DENY, ActKind.SIGN_IN, ActKind.INVITE}
_MEMBER_MAY = frozenset({ActKind.SIGN_IN, ActKind.LOCK})


@dataclass(frozen=True, slots=True)
class Act:
    """One act: its kind and what it is on (a session id, a door; "" for sign-in)."""

    kind: ActKind
    target: str = ""

    def canonical(self) -> bytes:
        return json.dumps(
            {"kind": self.kind.value, "target": self.target}, sort_keys=True, separators=(",", ":")
        ).encode()

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "target": self.target}

    def describe(self) -> str:
        words = {
            ActKind.SIGN_IN: "sign in",
            ActKind.APPROVE: "let in the visitor of session",
            ActKind.DENY: "turn away the visitor of session",
            ActKind.UNLOCK: "unlock door",
            ActKind.LOCK: "lock door",
            ActKind.INVITE: "invite a visitor with terms",
        }
        return f"{words[self.kind]} {self.target}".strip()


def parse_act(value: Any) -> Act:
    """An act from a request body: ``{"kind": ..., "target": ...}`` or BadAppRequest."""
    if not isinstance(value, dict) or set(value) - {"kind", "target"}:
        raise BadAppRequest("act must be an object with kind and target")
    try:
        kind = ActKind(str(value.get("kind")))
    except ValueError:
        raise BadAppRequest(f"unknown act kind {value.get('kind')!r}") from None
    target = value.get("target", "")
    if not isinstance(target, str) or len(target) > MAX_TARGET:
        raise BadAppRequest("act target must be a string of at most 64 characters")
    if kind is not ActKind.SIGN_IN and not target:
        raise BadAppRequest(f"a {kind.value} act names its target")
    return Act(kind, target)


def may(role: Role, kind: ActKind, *, may_open: bool = False) -> bool:
    """Whether a device with ``role`` may do an act of ``kind``; ``may_open``: the owner
    allowed this (member) device to open doors (approve, deny, unlock)."""
    return role is Role.OWNER or kind in _MEMBER_MAY or may_open


def act_challenge(act: Act, device_id: str, nonce: bytes) -> bytes:
    """The WebAuthn challenge committing to ``act`` by ``device_id`` (32 bytes)."""
    if len(nonce) != 32:
        raise ValueError("the act nonce is 32 bytes")
    digest = hashlib.sha256()
    for part in (ACT_CONTEXT, device_id.encode(), b"\n", act.canonical(), b"\n", nonce):
        digest.update(part)
    return digest.digest()
