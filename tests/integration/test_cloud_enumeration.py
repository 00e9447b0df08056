"""An unauthenticated caller cannot tell a registered gateway id from an unknown one."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
from nacl.signing import SigningKey

from cloud.signed_request import OWNER, gateway_principal, sign_request
from tests.support.cloud import GATEWAY_ID, new_parties, start_relay
from tests.support.relay_backend import RelayBackend

TIMEOUT = aiohttp.ClientTimeout(total=10)


async def status_and_code(url: str, headers: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.get(url, headers=headers) as response,
    ):
        body = await response.json(content_type=None)
        return response.status, body.get("code", "") if isinstance(body, dict) else ""


async def test_unknown_and_registered_ids_answer_alike_to_a_wrong_key(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "cloud", parties, backend=relay_backend)
    stranger = SigningKey.generate()
    try:
        answers = []
        for gateway_id in (GATEWAY_ID, "gw-not-registered"):
            path = f"/v1/owner/gateways/{gateway_id}/alarms"
            headers = sign_request(stranger, OWNER, "GET", path, b"", int(time.time()))
            answers.append(await status_and_code(url + path, headers))
            path = f"/v1/gateways/{gateway_id}/mailbox"
            headers = sign_request(
                stranger, gateway_principal(gateway_id), "GET", path, b"", int(time.time())
            )
            answers.append(await status_and_code(url + path, headers))
        assert answers == [(401, "unauthorized")] * 4
        # The registered owner is still let in: the refusal above was the key, not the route.
        path = f"/v1/owner/gateways/{GATEWAY_ID}/alarms"
        headers = sign_request(parties.owner, OWNER, "GET", path, b"", int(time.time()))
        assert (await status_and_code(url + path, headers))[0] == 200
    finally:
        await server.stop()
