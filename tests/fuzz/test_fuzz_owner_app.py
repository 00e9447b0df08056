"""Fuzzing the owner app's readers of what a browser on the LAN sends
(:mod:`gateway.owner`): the session cookie and the CSRF header (header values reach Python
with a byte that is not UTF-8 as a lone surrogate, aiohttp decoding with surrogateescape),
an act, and a WebAuthn credential, for registration and for an assertion. Only the owner
app's own refusals may escape (``NotSignedIn``, ``CsrfRefused``, ``BadAppRequest``,
``AssertionRefused``): anything else was a 500 on a route anyone on the LAN can reach.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.api.owner_app import parse_app_body
from gateway.owner.acts import Act, ActKind, Role, parse_act
from gateway.owner.errors import AssertionRefused, BadAppRequest, CsrfRefused, NotSignedIn
from gateway.owner.passkeys import Passkeys, credential_id_of
from gateway.owner.sessions import AppSessions
from tests.fuzz.fuzzing import ANY_TEXT, FUZZ, JSON, mutated, only

PASSKEYS = Passkeys("gw.local", "https://gw.local:8443")
CHALLENGE = bytes(32)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HEADER_TEXT = ANY_TEXT | st.binary(max_size=60).map(lambda b: b.decode("utf-8", "surrogateescape"))


@FUZZ
@given(st.none() | HEADER_TEXT, st.none() | HEADER_TEXT)
# A cookie (or CSRF header) with a byte that is not UTF-8: UnicodeEncodeError escaped when
# it was hashed, a 500 on GET /v1/app/me for anyone on the LAN (bug found here).
@example("ab\udcffcd", None)
@example(None, "\udcfe")
def test_cookies_and_csrf_headers_raise_only_their_refusals(
    cookie: str | None, csrf: str | None
) -> None:
    sessions = AppSessions(ttl_s=60)
    good_cookie, session = sessions.start("device-1", Role.OWNER)
    only(NotSignedIn, lambda: sessions.get(cookie))
    only(CsrfRefused, lambda: sessions.check_csrf(session, csrf))
    sessions.end(cookie)
    assert sessions.get(good_cookie) is session or cookie == good_cookie


@FUZZ
@given(JSON | mutated({"kind": "approve", "target": "s-1"}, ("kind", "target")))
def test_acts_raise_only_bad_app_request(value: Any) -> None:
    act = only(BadAppRequest, lambda: parse_act(value))
    if act is not None:
        assert isinstance(act, Act)
        assert act.kind is ActKind.SIGN_IN or act.target
        act.canonical()
        act.describe()


CREDENTIAL = {
    "id": b64u(b"cred-1"),
    "rawId": b64u(b"cred-1"),
    "type": "public-key",
    "response": {
        "clientDataJSON": b64u(b'{"type":"webauthn.get","challenge":"AAAA","origin":"x"}'),
        "authenticatorData": b64u(bytes(37)),
        "signature": b64u(bytes(70)),
        "userHandle": b64u(b"user"),
        "attestationObject": b64u(b"\xa0"),
    },
    "clientExtensionResults": {},
}


@st.composite
def credentials(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return draw(JSON)
    credential = draw(mutated(CREDENTIAL, tuple(CREDENTIAL)))
    if isinstance(credential.get("response"), dict) and draw(st.booleans()):
        response = credential["response"]
        credential["response"] = draw(mutated(response, tuple(response)))
    return credential


@FUZZ
@given(credentials())
# A credential that is not an object (a body without one): py_webauthn raised AttributeError,
# a 500 on POST /v1/app/enroll (bug found here).
@example(None)
def test_credentials_raise_only_assertion_refused(credential: Any) -> None:
    only(AssertionRefused, lambda: credential_id_of(credential))
    only(AssertionRefused, lambda: PASSKEYS.verify_registration(credential, CHALLENGE))
    only(
        AssertionRefused,
        lambda: PASSKEYS.verify_assertion(credential, CHALLENGE, bytes(32), 0),
    )


APP_FIELDS = {"token", "ceremony", "credential", "act", "name"}


@FUZZ
@given(
    st.binary(max_size=120)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(st.sampled_from(sorted(APP_FIELDS)), JSON, max_size=3).map(
        lambda v: json.dumps(v).encode()
    )
    | st.integers(1, 40).map(lambda n: b'{"act":' + b"[" * n * 100 + b"}")
)
# A lone surrogate spelled in JSON: let through, then hashing the enrollment token raised
# UnicodeEncodeError, a 500 on the public POST /v1/app/enroll/options (bug found here).
@example(b'{"token": "\\ud800"}')
def test_app_bodies_raise_only_bad_app_request(raw: bytes) -> None:
    body = only(BadAppRequest, lambda: parse_app_body(raw, APP_FIELDS))
    if body is not None:
        assert set(body) <= APP_FIELDS
        json.dumps(body, ensure_ascii=False).encode("utf-8")  # valid Unicode throughout
