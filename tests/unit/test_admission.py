"""The pure admission step: the decision order of a request, ending in a typed refusal."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from gateway.access.admission import (
    AccessRequest,
    AccessSettings,
    Admitted,
    ApprovalFacts,
    Refused,
    RequestFacts,
    admit,
    admit_approved,
)
from gateway.access.errors import AccessCode
from gateway.access.policy import Allow, AwaitApproval, PolicyRules
from gateway.trust.keys import key_id, public_key_of
from gateway.trust.reasons import Reason
from gateway.trust.revocation import HeldRevocations
from gateway.trust.ticket import Camera, Delivery, Purpose, package_hash
from tests.support.tickets import DOOR, GATEWAY, NOW, ZONE, Household, revocation_list

HOME = Household()
SETTINGS = AccessSettings(GATEWAY, HOME.anchors, ZONE, PolicyRules(), max_open_s=600)
CHALLENGE = HOME.challenge()
OWNER_KID = key_id(public_key_of(HOME.owner))


def request(token: str, *, jti: str = "t-0001", **changes: Any) -> AccessRequest:
    base = AccessRequest(
        ticket=token,
        door=DOOR,
        nonce=CHALLENGE.nonce,
        proof=HOME.proof(CHALLENGE, jti),
        package_code="PKG-1",
    )
    return dataclasses.replace(base, **changes)


def facts(**changes: Any) -> RequestFacts:
    base = RequestFacts(
        now=NOW,
        session_id="s-1",
        challenge=CHALLENGE,
        store_failed=False,
        revocations=None,
        time_floor=None,
        camera_live=True,
        storage_writable=True,
        door_free=True,
    )
    return dataclasses.replace(base, **changes)


def token(**changes: Any) -> str:
    delivery = Delivery("order-1", (package_hash("PKG-1"),))
    return HOME.owner_ticket(HOME.ticket(iss="owner", delivery=delivery, **changes))


def refused(answer: object) -> Refused:
    assert isinstance(answer, Refused)
    return answer


def test_a_good_request_is_admitted_with_its_use_to_count() -> None:
    answer = admit(request(token(uses=3, open_s=3600)), facts(), SETTINGS)
    assert isinstance(answer, Admitted)
    assert answer.decision == Allow()
    assert answer.use == (OWNER_KID, "t-0001", 3)
    assert answer.facts.session == "s-1"
    assert answer.facts.open_s == 600  # capped by the settings


def test_garbage_is_refused_unaudited() -> None:
    answer = refused(admit(request("v4.public.garbage"), facts(), SETTINGS))
    assert answer.refusal.code is AccessCode.BAD_TOKEN
    assert (answer.facts, answer.audited) == (None, False)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: (request(token(exp=NOW - timedelta(minutes=10))), facts()), AccessCode.EXPIRED),
        (lambda: (request(token(), package_code="PKG-9"), facts()), AccessCode.PACKAGE_MISMATCH),
        (
            lambda: (request(token()), facts(time_floor=NOW + timedelta(hours=1))),
            AccessCode.CLOCK_UNTRUSTED,
        ),
        (lambda: (request(token()), facts(door_free=False)), AccessCode.DOOR_BUSY),
    ],
)
def test_a_genuine_ticket_refused_is_audited(make: Any, code: AccessCode) -> None:
    req, gathered = make()
    answer = refused(admit(req, gathered, SETTINGS))
    assert answer.refusal.code is code
    assert answer.audited
    assert answer.facts is not None
    assert answer.facts.jti == "t-0001"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: (request(token(), proof=bytes(64)), facts()), AccessCode.BAD_PROOF),
        (lambda: (request(token()), facts(challenge=None)), AccessCode.UNKNOWN_CHALLENGE),
        (
            lambda: (request(token(exp=NOW - timedelta(minutes=10)), proof=bytes(64)), facts()),
            AccessCode.EXPIRED,
        ),
    ],
)
def test_a_holder_without_the_proof_is_refused_unaudited(make: Any, code: AccessCode) -> None:
    # Issue 11, finding 10: a copied token alone must not write in the holder's name; a
    # ticket refused anyway keeps its own reason.
    req, gathered = make()
    answer = refused(admit(req, gathered, SETTINGS))
    assert answer.refusal.code is code
    assert (answer.facts, answer.audited) == (None, False)


def test_the_order_ticket_before_proof_before_policy_before_door() -> None:
    # Expired, with a bad proof, a wrong code and a busy door: the ticket's reason wins.
    everything_wrong = request(token(exp=NOW - timedelta(minutes=10)), proof=bytes(64))
    answer = refused(admit(everything_wrong, facts(door_free=False), SETTINGS))
    assert answer.refusal.code is AccessCode.EXPIRED
    assert not answer.audited
    bad_proof = request(token(), proof=bytes(64), package_code="PKG-9")
    answer = refused(admit(bad_proof, facts(door_free=False), SETTINGS))
    assert answer.refusal.code is AccessCode.BAD_PROOF
    answer = refused(
        admit(request(token(), package_code="PKG-9"), facts(door_free=False), SETTINGS)
    )
    assert answer.refusal.code is AccessCode.PACKAGE_MISMATCH


def test_a_failed_store_refuses_all_but_an_emergency_unaudited() -> None:
    answer = refused(admit(request(token()), facts(store_failed=True), SETTINGS))
    assert (answer.refusal.code, answer.audited) == (AccessCode.STORAGE_UNAVAILABLE, False)
    emergency = HOME.owner_ticket(HOME.ticket(iss="owner", purpose=Purpose.EMERGENCY, uses=5))
    answer_e = admit(request(emergency), facts(store_failed=True, storage_writable=False), SETTINGS)
    assert isinstance(answer_e, Admitted)
    assert answer_e.use == (OWNER_KID, "t-0001", 1)  # single use whatever the ticket says
    assert answer_e.decision == Allow(alarm="emergency+storage_unwritable")


def test_an_emergency_is_never_refused_because_of_the_clock() -> None:
    """Issue 11, finding 1: with the floor far ahead (pushed there, or the clock set back),
    an emergency ticket valid at the clock opens, with the clock alarm; it used to be judged
    at the floor alone, where it had expired."""
    emergency = HOME.owner_ticket(
        HOME.ticket(iss="owner", purpose=Purpose.EMERGENCY, exp=NOW + timedelta(minutes=30))
    )
    far_ahead = facts(time_floor=NOW + timedelta(days=400))
    answer = admit(request(emergency), far_ahead, SETTINGS)
    assert isinstance(answer, Admitted)
    assert answer.decision == Allow(alarm="emergency+clock_untrusted")
    # Valid at the floor but not yet at the clock (the clock set back): it opens too.
    later = HOME.owner_ticket(
        HOME.ticket(
            iss="owner",
            purpose=Purpose.EMERGENCY,
            nbf=NOW + timedelta(hours=2),
            exp=NOW + timedelta(hours=3),
        )
    )
    behind = facts(time_floor=NOW + timedelta(hours=2, minutes=30))
    assert isinstance(admit(request(later), behind, SETTINGS), Admitted)
    trusted_later = facts(time_floor=NOW + timedelta(minutes=1))
    assert isinstance(admit(request(emergency), trusted_later, SETTINGS), Admitted)


def test_an_emergency_is_still_refused_for_what_is_not_the_clock() -> None:
    """Never refused because of the clock is not never refused: expired at both times, for
    another door, revoked, or with a bad proof, an emergency ticket is refused."""
    far_ahead = facts(time_floor=NOW + timedelta(days=400))
    expired = HOME.owner_ticket(
        HOME.ticket(
            iss="owner",
            purpose=Purpose.EMERGENCY,
            nbf=NOW - timedelta(hours=3),
            exp=NOW - timedelta(hours=1),
        )
    )
    assert refused(admit(request(expired), far_ahead, SETTINGS)).refusal.code is AccessCode.EXPIRED
    emergency = HOME.owner_ticket(HOME.ticket(iss="owner", purpose=Purpose.EMERGENCY))
    wrong_door = refused(admit(request(emergency, door="back"), far_ahead, SETTINGS))
    assert wrong_door.refusal.code is AccessCode.WRONG_DOOR
    held = HeldRevocations.of_list(revocation_list(1, jti=("t-0001",)))
    revoked = refused(
        admit(
            request(emergency),
            facts(time_floor=NOW + timedelta(days=400), revocations=held),
            SETTINGS,
        )
    )
    assert revoked.refusal.code is AccessCode.REVOKED
    bad_proof = request(emergency, proof=HOME.proof(CHALLENGE, "t-other"))
    assert refused(admit(bad_proof, far_ahead, SETTINGS)).refusal.code is AccessCode.BAD_PROOF


def test_an_owner_approval_ticket_waits() -> None:
    answer = admit(request(token(approval="owner")), facts(), SETTINGS)
    assert isinstance(answer, Admitted)
    assert answer.decision == AwaitApproval(SETTINGS.rules.approval_timeout_s)


def test_every_ticket_reason_is_an_access_code() -> None:
    for reason in Reason:
        if reason is not Reason.OK:
            assert AccessCode.of(reason).value == reason.value


def approval_facts(**changes: Any) -> ApprovalFacts:
    base = ApprovalFacts(
        now=NOW, revocations=None, time_floor=None, camera_live=True, storage_writable=True
    )
    return dataclasses.replace(base, **changes)


def test_an_approval_with_nothing_changed_stands() -> None:
    waiting = request(token(approval="owner", camera=Camera.REQUIRED, uses=1))
    assert isinstance(admit(waiting, facts(), SETTINGS), Admitted)
    # Its use is already counted (uses=1): the re-check does not count it again.
    assert admit_approved(waiting, approval_facts(), SETTINGS) is None


@pytest.mark.parametrize(
    ("changed", "code"),
    [
        (
            {"revocations": HeldRevocations.of_list(revocation_list(1, sub=("Alice Courier",)))},
            AccessCode.REVOKED,
        ),
        ({"now": NOW + timedelta(hours=4)}, AccessCode.EXPIRED),
        ({"time_floor": NOW + timedelta(hours=1)}, AccessCode.CLOCK_UNTRUSTED),
        ({"camera_live": False}, AccessCode.CAMERA_UNAVAILABLE),
        ({"storage_writable": False}, AccessCode.STORAGE_UNAVAILABLE),
    ],
)
def test_an_approval_re_runs_every_check_that_can_change(
    changed: dict[str, Any], code: AccessCode
) -> None:
    waiting = request(token(approval="owner", camera=Camera.REQUIRED))
    refusal = admit_approved(waiting, approval_facts(**changed), SETTINGS)
    assert refusal is not None
    assert refusal.code is code
