"""Issue 11, finding 16: the spec and the server disagreed. 429 is sent by every route but
was declared on 3 of 13; ``GET /v1/owner/events`` declared neither ``since``/``limit`` nor
its 400; 405 answers carried no ``Allow`` (RFC 9110); ``nonce``, ``proof`` and ``ticket``
had no format or length. Errors raised before routing (a NUL in a header, a malformed
request line, a header over 8,190 bytes) came back as ``text/plain``, the last echoing the
client's bytes: every error must be problem+json, and quote nothing the client sent."""

from __future__ import annotations

import re

from gateway.api.routes import ROUTES
from gateway.trust.base64url import b64u_encode
from tests.support.attack import Endpoint, exchange, http_request
from tests.support.service import GatewayHarness, harness

__all__ = ["harness"]

MARKER = "zq-client-bytes-zq"


async def test_the_spec_declares_what_the_server_sends(harness: GatewayHarness) -> None:
    doc = (await harness.client.call("GET", "/v1/openapi.json")).body
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        assert "429" in op["responses"], (route.path, "the per-address limit")
        if route.request_schema is not None:
            for code in ("400", "408", "413"):
                assert code in op["responses"], (route.path, code)
        if route.owner:
            assert "401" in op["responses"], route.path
    events = doc["paths"]["/v1/owner/events"]["get"]
    params = {p["name"]: p for p in events["parameters"]}
    assert params["since"]["in"] == params["limit"]["in"] == "query"
    assert params["since"]["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
    assert params["limit"]["schema"]["maximum"] == 1000
    assert "400" in events["responses"]
    access = doc["paths"]["/v1/access"]["post"]["requestBody"]["content"]["application/json"]
    props = access["schema"]["properties"]
    nonce, proof = b64u_encode(bytes(32)), b64u_encode(bytes(64))
    assert re.fullmatch(props["nonce"]["pattern"], nonce)
    assert re.fullmatch(props["proof"]["pattern"], proof)
    assert not re.fullmatch(props["nonce"]["pattern"], nonce + "A")
    assert props["ticket"]["maxLength"] == 4096
    assert re.fullmatch(props["ticket"]["pattern"], "v4.public.abc_-")


async def test_405_names_the_allowed_methods(harness: GatewayHarness) -> None:
    for method, path, allowed in (
        ("DELETE", "/v1/info", {"GET"}),
        ("GET", "/v1/access", {"POST"}),
        ("PUT", "/v1/owner/lock", {"POST"}),
    ):
        reply = await exchange(Endpoint.of(harness.url), http_request(method, path))
        assert reply.status == 405, (method, path, reply)
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert set(reply.headers["allow"].replace(" ", "").split(",")) == allowed
        assert reply.json()["code"] == "method_not_allowed"


async def test_errors_before_routing_are_problems_that_quote_nothing(
    harness: GatewayHarness,
) -> None:
    endpoint = Endpoint.of(harness.url)
    attacks = {
        "NUL in a header": f"GET /v1/info HTTP/1.1\r\nHost: g\r\nX-{MARKER}: a\0b\r\n\r\n",
        "malformed request line": f"GET /v1/{MARKER} HTTP/1.1 extra\r\nHost: g\r\n\r\n",
        "not HTTP": f"{MARKER} \x01\x02\r\n\r\n",
        "header too long": f"GET /v1/info HTTP/1.1\r\nHost: g\r\nX-Long: {MARKER * 600}\r\n\r\n",
        "request line too long": f"GET /v1/{MARKER * 600} HTTP/1.1\r\nHost: g\r\n\r\n",
    }
    for what, raw in attacks.items():
        reply = await exchange(endpoint, raw.encode("latin-1"))
        assert 400 <= reply.status < 500, (what, reply)
        assert reply.headers["content-type"].startswith("application/problem+json"), (what, reply)
        body = reply.json()
        assert isinstance(body["code"], str), what
        assert MARKER.encode() not in reply.body, (what, reply.body)
    assert (await harness.client.info())["gateway_id"]
