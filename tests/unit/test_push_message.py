"""The push payload and the app's subscription, pure (gateway.push.message,
gateway.owner.push_prefs)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.owner.errors import BadAppRequest
from gateway.owner.notices import Notice, NoticeKind
from gateway.owner.push_prefs import DEFAULT_KINDS, parse_kinds, parse_subscription
from gateway.push.message import PAYLOAD_BYTES, message_for, padded_payload, route_of, ttl_left


def _notice(kind: NoticeKind, text: str, session: str = "s-1") -> Notice:
    return Notice(kind, "front", session, "", text, True, 1_700_000_000_000)


@given(st.text(max_size=3000), st.sampled_from(list(NoticeKind)))
def test_every_payload_is_one_size_and_json(text: str, kind: NoticeKind) -> None:
    raw = padded_payload(message_for(_notice(kind, text)))
    assert len(raw) == PAYLOAD_BYTES
    shown = json.loads(raw)
    assert shown["kind"] == kind.value
    assert text.startswith(shown["body"].removesuffix("…").rstrip()) or shown["body"] == text


def test_each_notice_opens_its_screen() -> None:
    assert route_of(_notice(NoticeKind.APPROVAL_NEEDED, "")) == "approve/s-1"
    assert route_of(_notice(NoticeKind.COURIER_ARRIVED, "")) == "live"
    assert route_of(_notice(NoticeKind.EMERGENCY_ENTRY, "")) == "live"
    assert route_of(_notice(NoticeKind.CAMERA_STALLED, "")) == "live"
    assert route_of(_notice(NoticeKind.RELOCK_FAILED, "")) == "now"


def test_a_push_past_its_window_is_dropped() -> None:
    assert ttl_left(0.0, 300) == 300
    assert ttl_left(299.2, 300) is None  # less than a second left: not worth it
    assert ttl_left(120.5, 300) == 179
    assert ttl_left(400.0, 300) is None


def _sub(
    endpoint: str = "https://push.example/x", p256dh: str = "B" + "A" * 86
) -> dict[str, object]:
    return {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": "A" * 22}}


def test_a_subscription_is_https_with_keys_of_the_right_length() -> None:
    parsed = parse_subscription(_sub())
    assert len(parsed.p256dh) == 65
    assert len(parsed.auth) == 16
    for bad in (
        _sub("http://push.example/x"),
        _sub("https://user:pw@push.example/x"),
        _sub("file:///etc/passwd"),
        _sub(p256dh="AAAA"),
        _sub(p256dh="A" * 87),  # 65 bytes, not an uncompressed point (0x04 first)
        {"endpoint": "https://push.example/x"},
        "https://push.example/x",
    ):
        with pytest.raises(BadAppRequest):
            parse_subscription(bad)


def test_kinds_are_known_and_kept_in_order() -> None:
    assert parse_kinds(None) == DEFAULT_KINDS
    assert parse_kinds(["emergency_entry", "courier_arrived", "courier_arrived"]) == (
        "courier_arrived",
        "emergency_entry",
    )
    assert parse_kinds([]) == ()
    with pytest.raises(BadAppRequest):
        parse_kinds(["visitor_let_in"])  # not something that interrupts the owner
    with pytest.raises(BadAppRequest):
        parse_kinds("courier_arrived")
