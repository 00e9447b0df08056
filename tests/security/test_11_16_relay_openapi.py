"""Issue 11, finding 16 (the relay's part): the relay served no OpenAPI document, and its
errors outside the handlers (an unknown route, a wrong method) came back as text/plain, a
405 without the ``Allow`` header RFC 9110 requires.

The document must be built from the same route table as the router, and every answer a
client can provoke must be problem+json.
"""

from __future__ import annotations

from pathlib import Path

from cloud.routes import PROBLEM_TYPE, ROUTES
from tests.support.cloud import GATEWAY_ID, new_parties
from tests.support.relay_attack import raw_request, start_relay_with
from tests.support.relay_backend import RelayBackend

EVERY_METHOD = ("GET", "POST", "PUT", "DELETE", "PATCH")


async def test_the_openapi_document_matches_the_router_and_the_route_table(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    server, port = await start_relay_with(tmp_path / "relay", new_parties(), backend=relay_backend)
    try:
        reply = await raw_request(port, "GET", "/v1/openapi.json")
        assert reply.status == 200
        doc = reply.json
        assert doc["openapi"].startswith("3.1")
        documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
        app = server.relay.app()
        routed = {
            (r.method, r.resource.canonical)
            for r in app.router.routes()
            if r.resource is not None and r.method != "HEAD"
        }
        assert documented == routed == {(r.method, r.path) for r in ROUTES}
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                route = next(r for r in ROUTES if r.path == path and r.method.lower() == method)
                for code, answer in op["responses"].items():
                    if code != "default" and route.media and int(code) in route.media:
                        continue  # tlog-witness fixes the 409's body: the size, as text
                    if code == "default" or int(code) >= 400:
                        assert list(answer["content"]) == [PROBLEM_TYPE], (method, path, code)
                if "{gw}" in path:
                    assert {"name": "gw", "in": "path"}.items() <= op["parameters"][0].items()
        # Each documented route is served: no "no such route" for any of them.
        for method, path in documented:
            concrete = path.replace("{gw}", GATEWAY_ID).replace("{origin_hash}", "00" * 32)
            answer = await raw_request(port, method, concrete)
            assert answer.status != 404 or answer.json["code"] != "not_found", (method, path)
    finally:
        await server.stop()


async def test_a_wrong_method_is_a_problem_with_an_allow_header(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    server, port = await start_relay_with(tmp_path / "relay", new_parties(), backend=relay_backend)
    try:
        for route in ROUTES:
            allowed = {r.method for r in ROUTES if r.path == route.path}
            path = route.path.replace("{gw}", GATEWAY_ID).replace("{origin_hash}", "00" * 32)
            for method in EVERY_METHOD:
                if method in allowed:
                    continue
                reply = await raw_request(port, method, path)
                assert reply.status == 405, (method, path)
                assert reply.headers["content-type"].startswith(PROBLEM_TYPE)
                assert reply.json["code"] == "method_not_allowed"
                assert set(reply.headers["allow"].split(", ")) == allowed
    finally:
        await server.stop()


async def test_an_unknown_route_is_a_problem(tmp_path: Path, relay_backend: RelayBackend) -> None:
    server, port = await start_relay_with(tmp_path / "relay", new_parties(), backend=relay_backend)
    try:
        for target in ("/", "/v1/nothing", "/v2/time?nonce=0123456789abcdef", "/%00"):
            reply = await raw_request(port, "GET", target)
            assert reply.status == 404, target
            assert reply.headers["content-type"].startswith(PROBLEM_TYPE), target
            assert reply.json["code"] == "not_found"
    finally:
        await server.stop()
