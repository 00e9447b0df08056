"""The purpose policies and the camera and storage rules."""

from __future__ import annotations

import pytest

from gateway.access.policy import (
    Allow,
    AwaitApproval,
    GatewayFacts,
    PolicyRules,
    Refuse,
    TicketTerms,
    decide,
)
from gateway.trust.ticket import Purpose, package_hash

LIVE = GatewayFacts(camera_live=True)
DARK = GatewayFacts(camera_live=False)
RULES = PolicyRules()
CODE = "PKG-1234"
DELIVERY = TicketTerms(Purpose.DELIVERY, package_hashes=(package_hash(CODE),))


def test_delivery_needs_matching_code() -> None:
    assert decide(DELIVERY, package_code=CODE, facts=LIVE, rules=RULES) == Allow()
    for code in (None, "", "PKG-1235", " PKG-1234"):
        d = decide(DELIVERY, package_code=code, facts=LIVE, rules=RULES)
        assert isinstance(d, Refuse)
        assert d.code == "package_mismatch"
    empty = TicketTerms(Purpose.DELIVERY)
    d = decide(empty, package_code=CODE, facts=LIVE, rules=RULES)
    assert isinstance(d, Refuse)
    assert d.code == "package_mismatch"


def test_package_hash_matches_uppercase_hex() -> None:
    terms = TicketTerms(Purpose.DELIVERY, package_hashes=(package_hash(CODE).upper(),))
    assert decide(terms, package_code=CODE, facts=LIVE, rules=RULES) == Allow()


@pytest.mark.parametrize("purpose", [Purpose.SERVICE, Purpose.GUEST])
def test_service_and_guest_allowed(purpose: Purpose) -> None:
    assert decide(TicketTerms(purpose), package_code=None, facts=LIVE, rules=RULES) == Allow()


def test_survey_always_waits_for_owner() -> None:
    d = decide(TicketTerms(Purpose.SURVEY), package_code=None, facts=LIVE, rules=RULES)
    assert d == AwaitApproval(300.0)
    d = decide(
        TicketTerms(Purpose.GUEST, owner_approval=True),
        package_code=None,
        facts=LIVE,
        rules=PolicyRules(approval_timeout_s=5),
    )
    assert d == AwaitApproval(5)


def test_camera_required() -> None:
    terms = TicketTerms(Purpose.SERVICE, camera_required=True)
    d = decide(terms, package_code=None, facts=DARK, rules=RULES)
    assert isinstance(d, Refuse)
    assert d.code == "camera_unavailable"
    assert decide(terms, package_code=None, facts=LIVE, rules=RULES) == Allow()
    lenient = PolicyRules(allow_without_camera=True)
    assert decide(terms, package_code=None, facts=DARK, rules=lenient) == Allow()
    preferred = TicketTerms(Purpose.SERVICE, camera_required=False)
    assert decide(preferred, package_code=None, facts=DARK, rules=RULES) == Allow()


def test_storage_unwritable_fails_closed() -> None:
    facts = GatewayFacts(camera_live=True, storage_writable=False)
    d = decide(TicketTerms(Purpose.GUEST), package_code=None, facts=facts, rules=RULES)
    assert isinstance(d, Refuse)
    assert d.code == "storage_unavailable"


def test_untrusted_clock_refuses_non_emergency() -> None:
    d = decide(
        TicketTerms(Purpose.GUEST), package_code=None, facts=LIVE, rules=RULES, clock_alarm=True
    )
    assert isinstance(d, Refuse)
    assert d.code == "clock_untrusted"


def test_emergency_always_opens_with_alarm() -> None:
    terms = TicketTerms(Purpose.EMERGENCY, camera_required=True)
    d = decide(terms, package_code=None, facts=LIVE, rules=RULES)
    assert d == Allow(alarm="emergency")
    broken = GatewayFacts(camera_live=False, storage_writable=False)
    d = decide(terms, package_code=None, facts=broken, rules=RULES, clock_alarm=True)
    assert isinstance(d, Allow)
    assert d.alarm == "emergency+clock_untrusted+camera_down+storage_unwritable"
