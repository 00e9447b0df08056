"""The gateway card's address choice and layout (gateway.app.card, docs/api.md)."""

from __future__ import annotations

import json
import re

import pytest

from gateway.app.card import CardAddressError, GatewayCard, card_url, parse_card_url
from gateway.errors import UsageError


def test_a_gateway_bound_to_one_address_is_reached_there() -> None:
    assert card_url("192.168.1.20", 8443, ("10.0.0.5",)) == "https://192.168.1.20:8443"
    assert card_url("fd00::20", 8443, ()) == "https://[fd00::20]:8443"
    assert card_url("gw.home.arpa", 8443, ()) == "https://gw.home.arpa:8443"


def test_bound_to_every_address_the_one_lan_address_is_used_and_several_are_refused() -> None:
    # the usual home host: one IPv4 address and IPv6 ones besides; 0.0.0.0 is IPv4 only
    home = ("192.168.1.20", "fd00::2", "2001:db8::7")
    assert card_url("0.0.0.0", 8443, home) == "https://192.168.1.20:8443"
    # and :: is IPv6 only (the listener sets IPV6_V6ONLY): two of those, choose
    with pytest.raises(CardAddressError, match=re.escape("(fd00::2, 2001:db8::7)")):
        card_url("::", 8443, home)
    assert card_url("::", 8443, ("192.168.1.20", "fd00::20")) == "https://[fd00::20]:8443"
    with pytest.raises(CardAddressError, match=re.escape("192.168.1.20, 10.0.0.5")):
        card_url("0.0.0.0", 8443, ("192.168.1.20", "10.0.0.5"))
    with pytest.raises(CardAddressError, match="none"):
        card_url("0.0.0.0", 8443, ("fd00::2",))
    with pytest.raises(CardAddressError, match="port 0"):
        card_url("127.0.0.1", 0, ())


def test_an_owners_url_is_https_host_port_only() -> None:
    assert parse_card_url("https://192.168.1.20:8443/") == "https://192.168.1.20:8443"
    assert parse_card_url("https://[FD00::7]:443") == "https://[fd00::7]:443"
    for bad in (
        "http://h:1",
        "https://h",
        "https://h:0",
        "https://u@h:1",
        "https://h:1/p",
        "https://h:1?q",
        "https://h:99999",
        "h:1",
    ):
        with pytest.raises(UsageError):
            parse_card_url(bad)


def test_the_card_is_the_documented_object() -> None:
    card = GatewayCard("gw-3f2a91c0", "https://192.168.1.20:8443", "A" * 43, "ab" * 32)
    text = card.as_json()
    assert "\n" not in text
    assert list(json.loads(text)) == [
        "gateway_id",
        "url",
        "public_key",
        "tls_fingerprint",
        "tls_fingerprint_alg",
    ]
    assert json.loads(text)["tls_fingerprint_alg"] == "spki-sha256"
