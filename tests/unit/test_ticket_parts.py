"""Revocation lists, approvals, the clock rule, strict claims decoding and key ids."""

from __future__ import annotations

from datetime import timedelta

import pyseto
import pytest

from gateway.trust import paseto
from gateway.trust.approval import Approval, Decision, sign_approval
from gateway.trust.claims import decode_object, format_time, parse_time
from gateway.trust.clock import advance_floor, clock_trusted
from gateway.trust.envelope import TokenKind, seal
from gateway.trust.keys import TrustAnchors, generate_secret_key, key_id, public_key_of
from gateway.trust.reasons import Reason, TicketError
from gateway.trust.revocation import (
    LONGEST_VALIDITY,
    HeldRevocations,
    Revocation,
    RevokedKind,
    sign_revocations,
    verify_legacy_revocations,
    verify_revocations,
)
from gateway.trust.verification import verify_approval
from tests.support.tickets import GATEWAY, NOW, Household, revocation_list


def test_revocation_list_round_trip_and_audience() -> None:
    home = Household()
    rl = revocation_list(
        7,
        aud=(GATEWAY, "gw-cabin"),
        jti=("t-1",),
        sub=("Bob",),
        keys=(public_key_of(home.issuer),),
    )
    token = sign_revocations(rl, home.owner)
    assert verify_revocations(token, home.anchors, gateway_id=GATEWAY) == rl
    assert verify_revocations(token, home.anchors, gateway_id="gw-cabin") == rl
    with pytest.raises(TicketError) as err:
        verify_revocations(token, home.anchors, gateway_id="gw-elsewhere")
    assert err.value.reason is Reason.WRONG_GATEWAY
    with pytest.raises(TicketError) as err:
        sign_revocations(revocation_list(1, aud=()), home.owner)
    assert err.value.reason is Reason.MALFORMED_CLAIMS


def test_held_revocations_keep_the_latest_until_and_know_what_they_cover() -> None:
    short = revocation_list(1, jti=("t-1",), until=NOW)
    long = revocation_list(2, jti=("t-1",), until=NOW + timedelta(days=1))
    held = HeldRevocations.of(short.entries | long.entries, 2)
    assert held.until[(RevokedKind.TICKET, "t-1")] == NOW + timedelta(days=1)
    assert held.covers(short)
    assert held.covers(long)
    assert not held.covers(revocation_list(3, jti=("t-1",), until=NOW))  # a newer seq
    assert not held.covers(revocation_list(1, jti=("t-2",)))


def _format_1_list(owner: bytes) -> str:
    claims = {"v": 1, "seq": 4, "iat": format_time(NOW), "jti": ["t-1"], "sub": [], "keys": []}
    return seal(TokenKind.LEGACY_REVOCATION_LIST, claims, owner)


def test_a_format_1_list_is_refused_on_the_wire_but_read_when_held() -> None:
    home = Household()
    token = _format_1_list(home.owner)
    with pytest.raises(TicketError) as err:
        verify_revocations(token, home.anchors, gateway_id=GATEWAY)
    assert err.value.reason is Reason.MALFORMED_CLAIMS
    assert "format 1" in err.value.message
    legacy = verify_legacy_revocations(token, home.anchors)
    assert legacy.seq == 4
    assert legacy.entries == {Revocation(RevokedKind.TICKET, "t-1", NOW + LONGEST_VALIDITY)}


def test_revocation_list_from_a_stranger_is_refused() -> None:
    home = Household()
    token = sign_revocations(revocation_list(1), generate_secret_key())
    with pytest.raises(TicketError) as err:
        verify_revocations(token, home.anchors, gateway_id=GATEWAY)
    assert err.value.reason is Reason.UNKNOWN_KEY


def test_approval_flow() -> None:
    home = Household()

    def approval(**kw: object) -> str:
        base = dict(
            aud=GATEWAY,
            session="s-1",
            jti="t-0001",
            decision=Decision.APPROVE,
            iat=NOW,
            exp=NOW + timedelta(minutes=5),
        )
        base.update(kw)
        return sign_approval(Approval(**base), home.owner)  # type: ignore[arg-type]

    def check(token: str, now: object = NOW, session: str = "s-1") -> Reason:
        return verify_approval(
            token,
            anchors=home.anchors,
            gateway_id=GATEWAY,
            session_id=session,
            ticket_id="t-0001",
            now=now,
        ).reason  # type: ignore[arg-type]

    assert check(approval()) is Reason.OK
    assert check(approval(decision=Decision.DENY)) is Reason.APPROVAL_DECLINED
    assert check(approval(), session="s-2") is Reason.WRONG_SESSION
    assert check(approval(aud="gw-other")) is Reason.WRONG_GATEWAY
    assert check(approval(), now=NOW + timedelta(minutes=8)) is Reason.EXPIRED
    assert check(approval(), now=NOW - timedelta(minutes=3)) is Reason.NOT_YET_VALID
    stranger = sign_approval(
        Approval(GATEWAY, "s-1", "t-0001", Decision.APPROVE, NOW, NOW + timedelta(minutes=1)),
        generate_secret_key(),
    )
    assert check(stranger) is Reason.UNKNOWN_KEY
    with pytest.raises(TicketError):
        approval(exp=NOW + timedelta(hours=1))  # longer than 15 minutes


def test_clock_rule() -> None:
    assert clock_trusted(NOW, None)
    assert clock_trusted(NOW, NOW + timedelta(seconds=120))
    assert not clock_trusted(NOW, NOW + timedelta(seconds=121))
    assert clock_trusted(NOW, NOW + timedelta(seconds=200), skew=timedelta(seconds=300))
    assert advance_floor(None, NOW) == NOW
    assert advance_floor(NOW, NOW - timedelta(hours=1)) == NOW


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',
        b'{"a":1.0}',
        b'{"a":NaN}',
        b"[1]",
        b'"s"',
        b'{"a":{"b":{"c":{"d":{}}}}}',
        b"\xff\xfe{",
        '{"a":1}'.encode("utf-16"),
        b"[" * 5000,
        b"",
    ],
)
def test_strict_json_refusals(raw: bytes) -> None:
    with pytest.raises(TicketError) as err:
        decode_object(raw)
    assert err.value.reason is Reason.MALFORMED_CLAIMS


def test_depth_four_is_allowed() -> None:
    assert decode_object(b'{"a":{"b":{"c":{"d":1}}}}')


@pytest.mark.parametrize(
    "text",
    [
        "2026-06-03T10:00:00",
        "2026-06-03t10:00:00Z",
        "2026-13-03T10:00:00Z",
        "2026-06-03T10:00:00Z\n",
        "1780000000",
        "2026-06-03T10:00:00+0100",
    ],
)
def test_times_must_be_rfc3339(text: str) -> None:
    with pytest.raises(TicketError):
        parse_time(text)


def test_time_offsets_and_fractions() -> None:
    assert parse_time("2026-06-03T11:00:00.5+01:00") == NOW + timedelta(milliseconds=500)


def test_key_id_matches_pyseto_paserk() -> None:
    secret = generate_secret_key()
    public = public_key_of(secret)
    peer = pyseto.Key.from_asymmetric_key_params(4, x=public)
    assert key_id(public) == peer.to_paserk_id()


def test_trust_anchors_refuse_bad_keys() -> None:
    with pytest.raises(ValueError, match="32-byte owner key"):
        TrustAnchors(())
    with pytest.raises(ValueError, match="32-byte owner key"):
        TrustAnchors.of(b"short")


def test_pyseto_verifies_our_tickets() -> None:
    home = Household()
    token = home.delegated()
    key = pyseto.Key.from_asymmetric_key_params(4, x=public_key_of(home.issuer))
    decoded = pyseto.decode(key, token, implicit_assertion=b"threshold-ticket-v1")
    assert (
        decoded.payload
        == paseto.verify(token, public_key_of(home.issuer), None, b"threshold-ticket-v1")[0]
    )


def test_proof_message_refuses_bad_inputs_and_challenges_are_fresh() -> None:
    from gateway.trust.proof import CHALLENGE_TTL, new_challenge, proof_message

    with pytest.raises(ValueError, match="32 bytes"):
        proof_message(GATEWAY, bytes(31), "t-1", "open")
    with pytest.raises(ValueError, match="action"):
        proof_message(GATEWAY, bytes(32), "t-1", "op en")
    first, second = new_challenge(GATEWAY, NOW), new_challenge(GATEWAY, NOW)
    assert first.nonce != second.nonce
    assert len(first.nonce) == 32
    assert first.expires_at == NOW + CHALLENGE_TTL


def test_proof_pieces_cannot_be_shifted() -> None:
    from gateway.trust.proof import proof_message

    # Length prefixes keep ("gw-1", ..., "t-12", "open") apart from ("gw-1", ..., "t-1", "2open").
    a = proof_message("gw-1", bytes(32), "t-12", "open")
    b = proof_message("gw-1", bytes(32), "t-1", "2open")
    assert a != b
