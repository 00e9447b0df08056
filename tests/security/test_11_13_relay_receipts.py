"""Issue 11, finding 13: the relay's unauthenticated ``POST /v1/receipts``.

The attacks: learn which gateway ids are registered from the answer to a forged receipt, and
flood the route (3,000 forged receipts in 3.3 s, each one a turn of the single storage
thread), from one address, from many, and with junk from many addresses to push an
exhausted address out of the limiter's table so that it starts afresh.
"""

from __future__ import annotations

from pathlib import Path

from cloud.ratelimit import Rate
from tests.support.cloud import GATEWAY_ID, new_parties
from tests.support.relay_attack import forged_receipt, post_receipt, start_relay_with
from tests.support.relay_backend import RelayBackend

PROBLEM = "application/problem+json"


async def test_a_forged_receipt_is_answered_alike_for_known_and_unknown_gateways(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    server, port = await start_relay_with(tmp_path / "relay", new_parties(), backend=relay_backend)
    try:
        answers = []
        for gateway_id in (GATEWAY_ID, "gw-not-registered"):
            reply = await post_receipt(port, forged_receipt(gateway_id))
            assert reply.headers["content-type"].startswith(PROBLEM)
            answers.append((reply.status, reply.json))
        known, unknown = answers
        assert known == unknown
        assert known[0] == 400
        assert known[1]["code"] == "malformed"
    finally:
        await server.stop()


async def test_a_flood_from_one_address_is_cut_off(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    server, port = await start_relay_with(
        tmp_path / "relay",
        new_parties(),
        per_client=Rate(per_minute=1, burst=5),
        backend=relay_backend,
    )
    try:
        statuses = [
            (await post_receipt(port, forged_receipt(GATEWAY_ID))).status for _ in range(40)
        ]
        assert statuses == [400] * 5 + [429] * 35
        refused = await post_receipt(port, forged_receipt(GATEWAY_ID))
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert refused.json["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        await server.stop()


async def test_a_flood_from_many_addresses_meets_the_global_budget(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    server, port = await start_relay_with(
        tmp_path / "relay",
        new_parties(),
        overall=Rate(per_minute=1, burst=8),
        backend=relay_backend,
    )
    try:
        statuses = [
            (await post_receipt(port, forged_receipt(GATEWAY_ID), source=f"127.0.0.{n}")).status
            for n in range(1, 21)
        ]
        assert statuses == [400] * 8 + [429] * 12
    finally:
        await server.stop()


async def test_junk_from_many_addresses_does_not_refund_an_exhausted_address(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    server, port = await start_relay_with(
        tmp_path / "relay",
        new_parties(),
        per_client=Rate(per_minute=1, burst=2),
        max_clients=4,
        backend=relay_backend,
    )
    try:
        victim = "127.0.0.1"
        spent = [(await post_receipt(port, forged_receipt(GATEWAY_ID))).status for _ in range(3)]
        assert spent == [400, 400, 429]
        # More addresses than the table holds, each within its own budget.
        for n in range(2, 30):
            await post_receipt(port, forged_receipt(GATEWAY_ID), source=f"127.0.0.{n}")
        again = await post_receipt(port, forged_receipt(GATEWAY_ID), source=victim)
        assert again.status == 429
    finally:
        await server.stop()
