"""The pure parts of remote reach: which names the relay routes, to whom; the tunnel's
reconnect schedule; when a certificate renews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.remote_names import (
    NameNotRouted,
    NameNotYours,
    NameTable,
    RemoteNameError,
    challenge_name,
    host_name,
)
from gateway.remote.schedule import (
    HEALTHY_AFTER_S,
    failures_after,
    reconnect_delay,
    renewal_due,
)

TABLE = NameTable("relay.example", {"home": "gw-a", "cabin-2": "gw-b"})


def test_a_name_is_routed_only_to_its_gateway() -> None:
    assert TABLE.owned_by("home", "gw-a") == "home.relay.example"
    with pytest.raises(NameNotYours):
        TABLE.owned_by("home", "gw-b")
    with pytest.raises(NameNotRouted):
        TABLE.owned_by("garage", "gw-a")


@pytest.mark.parametrize(
    ("server_name", "routed"),
    [
        ("home.relay.example", True),
        ("cabin-2.relay.example", True),
        ("relay.example", False),
        ("x.home.relay.example", False),
        ("home.relay.example.evil", False),
        ("homerelay.example", False),
        ("garage.relay.example", False),
    ],
)
def test_the_front_routes_exactly_the_assigned_host_names(server_name: str, routed: bool) -> None:
    assert TABLE.routes(server_name) is routed


@pytest.mark.parametrize("bad", ["", "-home", "home-", "Home", "h_me", "a" * 64, "a.b", "é"])
def test_a_remote_name_is_one_lower_case_dns_label(bad: str) -> None:
    with pytest.raises(RemoteNameError):
        host_name(bad, "relay.example")
    with pytest.raises(RemoteNameError):
        NameTable("relay.example", {bad: "gw"})


def test_the_challenge_record_sits_under_the_host_name() -> None:
    assert challenge_name("home", "relay.example") == "_acme-challenge.home.relay.example"


def test_reconnect_delay_doubles_is_capped_and_never_below_the_minimum() -> None:
    top = [reconnect_delay(n, cap_s=30, minimum_s=2, jitter=lambda: 0.999999) for n in (1, 3, 9)]
    assert top[0] == 2  # 1 s doubled once is still under the minimum
    assert top[1] == pytest.approx(4, rel=1e-3)
    assert top[2] == pytest.approx(30, rel=1e-3)
    assert reconnect_delay(5, cap_s=30, minimum_s=2, jitter=lambda: 0.0) == 2


def test_a_tunnel_that_stayed_up_resets_the_backoff() -> None:
    assert failures_after(7, None) == 8
    assert failures_after(7, HEALTHY_AFTER_S - 1) == 8
    assert failures_after(7, HEALTHY_AFTER_S) == 1


def test_renewal_is_due_in_the_last_third_of_the_lifetime() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=90)
    assert not renewal_due(start, end, start + timedelta(days=59), 1 / 3)
    assert renewal_due(start, end, start + timedelta(days=60), 1 / 3)
    assert renewal_due(start, end, end + timedelta(days=1), 1 / 3)
