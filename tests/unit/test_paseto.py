"""gateway.trust.paseto against the official v4 vectors, plus strictness and fuzzing properties."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.trust import paseto
from gateway.trust.paseto import PasetoError

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "data" / "paseto-v4.json").read_text()
)["tests"]
SIGNED = [v for v in VECTORS if v["name"].startswith("4-S-")]
FAILING = [v for v in VECTORS if v["name"].startswith("4-F-")]
PUBLIC = bytes.fromhex(SIGNED[0]["public-key"])
SECRET = bytes.fromhex(SIGNED[0]["secret-key"])


def test_vector_file_has_the_expected_cases() -> None:
    assert [v["name"] for v in SIGNED] == ["4-S-1", "4-S-2", "4-S-3"]
    assert [v["name"] for v in FAILING] == ["4-F-1", "4-F-2", "4-F-3", "4-F-4", "4-F-5"]


@pytest.mark.parametrize("vector", SIGNED, ids=lambda v: v["name"])
def test_signed_vectors_verify(vector: dict[str, Any]) -> None:
    footer = vector["footer"].encode()
    assertion = vector["implicit-assertion"].encode()
    public = bytes.fromhex(vector["public-key"])
    message, got_footer = paseto.verify(vector["token"], public, footer, assertion)
    assert message == vector["payload"].encode()
    assert got_footer == footer
    # Also without stating the footer: it is returned, still authenticated.
    assert paseto.verify(vector["token"], public, None, assertion) == (message, footer)


@pytest.mark.parametrize("vector", SIGNED, ids=lambda v: v["name"])
def test_signing_reproduces_vectors(vector: dict[str, Any]) -> None:
    # Ed25519 is deterministic, so signing the same inputs gives the same token.
    token = paseto.sign(
        vector["payload"].encode(),
        bytes.fromhex(vector["secret-key"]),
        vector["footer"].encode(),
        vector["implicit-assertion"].encode(),
    )
    assert token == vector["token"]


@pytest.mark.parametrize("vector", FAILING, ids=lambda v: v["name"])
def test_failure_vectors_fail(vector: dict[str, Any]) -> None:
    with pytest.raises(PasetoError):
        paseto.verify(
            vector["token"],
            PUBLIC,
            vector["footer"].encode(),
            vector["implicit-assertion"].encode(),
        )
    with pytest.raises(PasetoError):
        paseto.verify(vector["token"], PUBLIC, None, vector["implicit-assertion"].encode())


def test_wrong_footer_implicit_assertion_or_key_fail() -> None:
    v = SIGNED[2]
    with pytest.raises(PasetoError):
        paseto.verify(v["token"], PUBLIC, b'{"kid":"other"}', v["implicit-assertion"].encode())
    with pytest.raises(PasetoError):
        paseto.verify(v["token"], PUBLIC, v["footer"].encode(), b"")
    with pytest.raises(PasetoError):
        paseto.verify(v["token"], bytes(32), v["footer"].encode(), v["implicit-assertion"].encode())
    with pytest.raises(PasetoError):
        paseto.verify(v["token"], PUBLIC[:31], None, v["implicit-assertion"].encode())


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "\n",
        lambda t: " " + t,
        lambda t: t.replace("v4.public.", "V4.public.", 1),
        lambda t: t.replace("v4.public.", "v4.Public.", 1),
        lambda t: t.replace("v4.public.", "v4.local.", 1),
        lambda t: t.replace("v4.public.", "v3.public.", 1),
        lambda t: t + "=",
        lambda t: t + ".",
        lambda t: t + "..",
        lambda t: t.replace("-", "+").replace("_", "/"),
    ],
)
def test_non_canonical_spellings_fail(mangle: Any) -> None:
    token = paseto.sign(b'{"a":1}', SECRET, b"foot")
    assert paseto.verify(token, PUBLIC, b"foot")[0] == b'{"a":1}'
    with pytest.raises(PasetoError):
        paseto.verify(mangle(token), PUBLIC)


def test_non_zero_trailing_bits_are_refused() -> None:
    # 1 + 64 bytes = 65 bytes: 87 base64 chars, the last carrying 4 padding bits.
    token = paseto.sign(b"x", SECRET)
    body = token[len("v4.public.") :]
    assert len(body) % 4 == 3
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(body[-1])
    twin = alphabet[last | 1] if not last & 1 else alphabet[last & ~1]
    assert twin != body[-1]
    with pytest.raises(PasetoError):
        paseto.verify("v4.public." + body[:-1] + twin, PUBLIC)


def test_pae_matches_the_specification_examples() -> None:
    assert paseto.pae() == b"\x00" * 8
    assert paseto.pae(b"") == b"\x01" + b"\x00" * 7 + b"\x00" * 8
    assert paseto.pae(b"test") == (
        b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
    )


def test_sign_refuses_bad_secret_keys() -> None:
    with pytest.raises(PasetoError):
        paseto.sign(b"m", SECRET[:32])
    with pytest.raises(PasetoError):
        paseto.sign(b"m", SECRET[:32] + bytes(32))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_rejected(data: st.DataObject) -> None:
    token = paseto.sign(b'{"jti":"t-1","door":"front"}', SECRET, b'{"kid":"k"}', b"ia")
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != token[index]))
    mutated = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(PasetoError):
        paseto.verify(mutated, PUBLIC, None, b"ia")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet="v4.publicA-Za-z0-9_-"), st.binary().map(str)))
def test_random_strings_raise_only_paseto_error(text: str) -> None:
    for candidate in (text, "v4.public." + text):
        with pytest.raises(PasetoError):
            paseto.verify(candidate, PUBLIC)
        with pytest.raises(PasetoError):
            paseto.verify(candidate, PUBLIC, b"")


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=64), st.binary(max_size=64))
def test_sign_verify_round_trip(message: bytes, footer: bytes, assertion: bytes) -> None:
    token = paseto.sign(message, SECRET, footer, assertion)
    assert paseto.verify(token, PUBLIC, None, assertion) == (message, footer)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_base64url_round_trip(data: bytes) -> None:
    assert paseto.b64decode(paseto.b64encode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= \n"))
def test_base64url_accepts_only_canonical_spellings(text: str) -> None:
    try:
        data = paseto.b64decode(text)
    except PasetoError:
        return
    assert paseto.b64encode(data) == text
