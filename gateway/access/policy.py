"""The purpose policies: what a ticket that already verified may do at this door, right now.

:func:`gateway.trust.verification.verify_ticket` answers "is this a genuine, current ticket for this
door, presented by its holder?" (signatures, chain of trust, time, schedule, revocation,
proof, uses). This module answers the remaining question from facts the runner gathers:
does the purpose's own rule hold, and may the door open in the gateway's present condition?
It is pure: no clock, no camera, no disk; those come in as :class:`GatewayFacts`.

The rules (the purposes are the ``purpose`` claim of docs/tickets.md §3; approval is §8):

* ``delivery``: the SHA-256 of the package code the courier typed or scanned must equal one
  of the hashes in the ticket (compared in constant time). No code, no entry.
* ``service`` and ``guest``: the schedule, which ``verify_ticket`` already enforced.
* ``survey``: always waits for the owner's signed approval, whatever the ticket says; the
  wait times out to ``approval_denied``.
* ``emergency``: opens even with the camera down, the clock untrusted or the store
  unwritable; every such open carries an alarm. Single use is enforced by admission
  (:mod:`gateway.access.admission`), which counts an emergency ticket with ``max_uses = 1``
  whatever its ``uses`` claim says (in memory while the store is down).
* Any ticket with ``approval: owner`` waits for the owner too.
* Camera: ``camera: required`` with no live camera is ``camera_unavailable`` unless the owner
  set ``policy.allow_without_camera``.
* Storage: if the audit log cannot be written the answer is ``storage_unavailable``; a door
  never opens without its record (emergency excepted, loudly).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from gateway.access.errors import AccessCode
from gateway.trust.ticket import Purpose, package_hash


@dataclass(frozen=True, slots=True)
class TicketTerms:
    """The parts of a verified ticket's claims that the purpose policies read."""

    purpose: Purpose
    package_hashes: tuple[str, ...] = ()
    owner_approval: bool = False
    camera_required: bool = False


@dataclass(frozen=True, slots=True)
class GatewayFacts:
    """The gateway's condition when the request is decided."""

    camera_live: bool
    storage_writable: bool = True


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """The owner's policy settings (``[policy]`` in threshold.toml)."""

    allow_without_camera: bool = False
    approval_timeout_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Allow:
    """Open the door; ``alarm`` says why this open must also raise an alarm, if it must."""

    alarm: str | None = None


@dataclass(frozen=True, slots=True)
class AwaitApproval:
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Refuse:
    code: AccessCode
    detail: str


Decision = Allow | AwaitApproval | Refuse


def package_code_matches(code: str | None, hashes: tuple[str, ...]) -> bool:
    if not code or not hashes:
        return False
    digest = package_hash(code)
    found = False
    for expected in hashes:
        # No early exit: every candidate is compared, each in constant time.
        found |= hmac.compare_digest(digest, expected.lower())
    return found


def decide(
    terms: TicketTerms,
    *,
    package_code: str | None,
    facts: GatewayFacts,
    rules: PolicyRules,
    clock_alarm: bool = False,
) -> Decision:
    """Decide a request whose ticket ``verify_ticket`` allowed.

    ``clock_alarm`` is the verdict's flag that the ticket was let through an untrusted clock
    (only emergency tickets ever are).
    """
    if terms.purpose is Purpose.EMERGENCY:
        reasons = []
        if clock_alarm:
            reasons.append("clock_untrusted")
        if not facts.camera_live:
            reasons.append("camera_down")
        if not facts.storage_writable:
            reasons.append("storage_unwritable")
        return Allow(alarm="emergency" + "".join(f"+{r}" for r in reasons))
    if clock_alarm:
        return Refuse(AccessCode.CLOCK_UNTRUSTED, "the gateway's clock is behind its time floor")
    if not facts.storage_writable:
        why = "the audit log cannot be written; failing closed"
        return Refuse(AccessCode.STORAGE_UNAVAILABLE, why)
    if terms.camera_required and not facts.camera_live and not rules.allow_without_camera:
        why = "this ticket requires a live camera and none is"
        return Refuse(AccessCode.CAMERA_UNAVAILABLE, why)
    if terms.purpose is Purpose.DELIVERY and not package_code_matches(
        package_code, terms.package_hashes
    ):
        what = "no package code given" if not package_code else "package code not on ticket"
        return Refuse(AccessCode.PACKAGE_MISMATCH, what)
    if terms.purpose is Purpose.SURVEY or terms.owner_approval:
        return AwaitApproval(rules.approval_timeout_s)
    return Allow()
