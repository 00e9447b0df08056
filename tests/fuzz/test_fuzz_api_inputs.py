"""Fuzzing the LAN API's problem paths: what turns a request's body, fields and query into
either values or a ``problem+json`` (:mod:`gateway.api.bodies`, the owner routes' query
integers, the unverified ticket-id peek the rate limiter keys on). Only
:class:`~gateway.api.problems.Problem` may escape (the middleware answers it as the typed
4xx); anything else is a 500. What is let through must be what the handlers can use: string
fields that are valid Unicode, integers within their bounds.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.api.bodies import b64u_field, parse_body, peek_ticket_id
from gateway.api.owner import MAX_SINCE, query_int
from gateway.api.problems import Problem
from gateway.api.routes import ROUTES
from tests.fuzz.fuzzing import ANY_TEXT, FUZZ, JSON, mutated, only

BODY_ROUTES = [route for route in ROUTES if route.request_schema is not None]
ACCESS = {
    "ticket": "v4.public.eyJqdGkiOiJ0LTEifQ",
    "door": "front",
    "nonce": "A" * 43,
    "proof": "A" * 86,
    "package_code": "PKG-1",
}


def raw_json(value: Any) -> bytes:
    return json.dumps(value).encode()


BODIES = (
    st.binary(max_size=200)
    | JSON.map(raw_json)
    | mutated(ACCESS, tuple(ACCESS)).map(raw_json)
    | st.integers(1, 50).map(lambda n: b'{"door":' + b"[" * n * 100 + b"}")
    | st.integers(4300, 5000).map(lambda n: b'{"door":' + b"1" * n + b"}")
)


@FUZZ
@given(BODIES, st.sampled_from(BODY_ROUTES))
# A lone surrogate in a field: let through, then package_hash() could not encode it, a 500
# with a traceback for a courier's POST /v1/access (bug found here).
@example(raw_json({**ACCESS, "package_code": "\ud800"}), BODY_ROUTES[0])
def test_bodies_raise_only_problems(raw: bytes, route: Any) -> None:
    body = only(Problem, lambda: parse_body(raw, route))
    if body is None:
        return
    for key, value in body.items():
        assert key in route.request_schema["properties"]
        assert isinstance(value, str)
        value.encode("utf-8")  # valid Unicode: every later encode of it succeeds
    for key, length in (("nonce", 32), ("proof", 64)):
        if key in body:
            decoded = only(Problem, lambda key=key, length=length: b64u_field(body, key, length))
            assert decoded is None or len(decoded) == length


@FUZZ
@given(st.one_of(st.none(), ANY_TEXT, st.text("0123456789\u0660\u00b2+-_ ", max_size=25)))
def test_query_integers_raise_only_problems(text: str | None) -> None:
    for low, high in ((0, MAX_SINCE), (1, 1000)):
        value = only(Problem, lambda low=low, high=high: query_int(text, "since", low, low, high))
        assert value is None or low <= value <= high


@FUZZ
@given(ANY_TEXT | st.builds(lambda t: "v4.public." + t, ANY_TEXT) | st.text(max_size=400))
def test_the_ticket_id_peek_never_raises(token: str) -> None:
    key = peek_ticket_id(token)
    assert key.startswith(("jti:", "token:"))
