"""Fuzzing remote reach's readers (docs/remote.md): the gateway's reading of the relay's
tunnel grant (``read_grant``), the relay's reading of a remote name (``NameTable``) and of a
TLS server name (``routes``), and the front's ClientHello parsing as the relay runs it. Only
each module's own refusal may escape."""

from __future__ import annotations

import contextlib
import ssl

from hypothesis import example, given
from hypothesis import strategies as st
from snitun.exceptions import ParseSNIError
from snitun.server.sni import parse_tls_sni

from cloud.errors import CloudError
from cloud.remote_names import NameTable, check_label
from gateway.remote.errors import RelayRefused
from gateway.remote.relay_api import read_grant
from tests.fuzz.fuzzing import ANY_TEXT, FUZZ, JSON, mutated, only

TABLE = NameTable("relay.example", {"home": "gw-a"})
GRANT = {
    "host_name": "home.relay.example",
    "token": "gAAAAAB" + "x" * 100,
    "aes_key": "00" * 32,
    "aes_iv": "11" * 16,
    "valid_s": 300,
    "port": 443,
}


@FUZZ
@given(JSON | mutated(GRANT, tuple(GRANT)))
@example({**GRANT, "token": "\ud800"})
@example({**GRANT, "aes_key": "zz" * 32})
@example({**GRANT, "port": True})
def test_a_tunnel_grant_is_read_or_refused(data: object) -> None:
    grant = only(RelayRefused, lambda: read_grant(data))
    if grant is not None:
        assert len(grant.aes_key) == 32
        assert len(grant.aes_iv) == 16
        assert 0 < grant.port < 65536


@FUZZ
@given(ANY_TEXT, ANY_TEXT)
@example("home", "gw-a")
@example("HOME", "gw-a")
@example("home\n", "gw-a")
def test_a_remote_name_is_owned_or_refused(name: str, gateway_id: str) -> None:
    def ask() -> str:
        return TABLE.owned_by(check_label(name), gateway_id)

    host = only(CloudError, ask)  # bad_remote_name, name_not_routed, name_not_yours
    if host is not None:
        assert host == "home.relay.example"
        assert gateway_id == "gw-a"


@FUZZ
@given(ANY_TEXT)
@example("home.relay.example.")
@example("home.relay.example\x00")
def test_the_front_routes_only_assigned_names(server_name: str) -> None:
    assert TABLE.routes(server_name) is (server_name == "home.relay.example")


def _client_hello() -> bytes:
    """A real ClientHello for the routed name, as Python's TLS writes it."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(
        incoming, outgoing, server_hostname="home.relay.example"
    )
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


HELLO = _client_hello()


@st.composite
def damaged_hellos(draw: st.DrawFn) -> bytes:
    data = bytearray(HELLO)
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@FUZZ
@given(damaged_hellos() | st.binary(max_size=300).map(lambda b: b"\x16\x03\x01" + b))
@example(HELLO)
def test_a_client_hello_parses_or_is_refused(record: bytes) -> None:
    name = only(ParseSNIError, lambda: parse_tls_sni(record))
    if record == HELLO:
        assert name == "home.relay.example"
