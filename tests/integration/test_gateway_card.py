"""``threshold card`` as a phone uses it: the card printed by the real command, read by a
phone-side parser written from docs/api.md ("The gateway card") alone, which connects to the
real gateway on loopback HTTPS, pins its TLS key and checks ``GET /v1/info`` repeats the card.

The phone side uses only the standard library and ``cryptography`` (to find the certificate's
SubjectPublicKeyInfo), none of the gateway's code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import socket
import ssl
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from nacl.signing import SigningKey

from gateway.app.provision import init_gateway
from gateway.trust.base64url import b64u_encode
from tests.support.service import WAIT, running_harness, set_config

# --- the phone, from docs/api.md alone ----------------------------------------------------

CARD_MEMBERS = {"gateway_id", "url", "public_key", "tls_fingerprint", "tls_fingerprint_alg"}


class CardRefused(Exception):
    """The phone refuses the card or the gateway it leads to."""


@dataclass(frozen=True)
class PhoneCard:
    gateway_id: str
    host: str
    port: int
    public_key: str
    pin: bytes  # SHA-256 of the TLS key's SubjectPublicKeyInfo


def _b64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def phone_read_card(text: str) -> PhoneCard:
    card = json.loads(text)
    if not isinstance(card, dict) or set(card) != CARD_MEMBERS:
        raise CardRefused(f"members {sorted(card)}")
    if not all(isinstance(v, str) for v in card.values()):
        raise CardRefused("every member is a string")
    if card["tls_fingerprint_alg"] != "spki-sha256":
        raise CardRefused("unknown fingerprint algorithm")
    pin = bytes.fromhex(card["tls_fingerprint"])
    if len(pin) != 32 or len(_b64u(card["public_key"])) != 32:
        raise CardRefused("pin or key of the wrong size")
    url = urllib.parse.urlsplit(card["url"])
    if url.scheme != "https" or url.hostname is None or url.port is None:
        raise CardRefused("not an https URL with a port")
    return PhoneCard(card["gateway_id"], url.hostname, url.port, card["public_key"], pin)


def ticket_audience(token: str) -> str:
    """The ``aud`` of a PASETO v4.public token (message, then a 64-byte signature)."""
    payload = token.split(".")[2]
    return str(json.loads(_b64u(payload)[:-64])["aud"])


def phone_fetch_info(card: PhoneCard) -> dict[str, Any]:
    """Connect, check the TLS key against the pin BEFORE sending anything, GET /v1/info."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a self-signed certificate: the pin authenticates
    connection = http.client.HTTPSConnection(card.host, card.port, context=context, timeout=WAIT)
    try:
        connection.connect()
        assert isinstance(connection.sock, ssl.SSLSocket)
        der = connection.sock.getpeercert(binary_form=True)
        assert der is not None
        spki = (
            x509.load_der_x509_certificate(der)
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        if hashlib.sha256(spki).digest() != card.pin:
            raise CardRefused("the gateway's TLS key is not the card's pin")
        connection.request("GET", "/v1/info")
        response = connection.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise CardRefused(f"/v1/info answered {response.status}")
    finally:
        connection.close()
    if (body["gateway_id"], body["public_key"], bytes.fromhex(body["tls_fingerprint"])) != (
        card.gateway_id,
        card.public_key,
        card.pin,
    ):
        raise CardRefused("/v1/info does not repeat the card")
    return dict(body)


# --- the tests -----------------------------------------------------------------------------


async def threshold(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_phone_reads_the_card_and_connects_with_its_pin(tmp_path: Path) -> None:
    port = _free_port()

    def bind(config: Path) -> None:
        set_config(config, "api", "bind", f'"127.0.0.1:{port}"')

    # port=None: the gateway listens where threshold.toml says, which is what the card says.
    async with running_harness(tmp_path / "gw", configure=bind, port=None) as h:
        config = str(h.directory / "threshold.toml")
        code, out, err = await threshold("card", "--config", config)
        assert code == 0, err
        json_line, qr = out.split("\n", 1)
        assert "█" in qr or "▀" in qr  # the QR code follows the JSON line
        assert "loopback" in err  # the owner is told a phone on the LAN cannot use it

        card = phone_read_card(json_line)
        assert card.gateway_id == ticket_audience(h.ticket().token)
        info = await asyncio.to_thread(phone_fetch_info, card)
        assert info["gateway_id"] == "gw-test"

        code, out, err = await threshold("card", "--config", config, "--no-qr")
        assert code == 0, err
        assert out == json_line + "\n"


async def test_a_card_does_not_lead_a_phone_to_another_gateway(tmp_path: Path) -> None:
    # The attack: a host at the card's address that is not the card's gateway (here another
    # real gateway). The phone refuses it before sending a byte of its request.
    async with running_harness(tmp_path / "gw") as h:
        other = await asyncio.to_thread(
            init_gateway,
            tmp_path / "other",
            owner_pub=b64u_encode(bytes(SigningKey.generate().verify_key)),
            gateway_id="gw-other",
        )
        code, out, err = await threshold(
            "card", "--config", str(other.config_path), "--url", h.url, "--no-qr"
        )
        assert code == 0, err
        card = phone_read_card(out)
        assert (card.host, card.port) == (urllib.parse.urlsplit(h.url).hostname, h.gateway.port)
        with pytest.raises(CardRefused, match="not the card's pin"):
            await asyncio.to_thread(phone_fetch_info, card)


async def test_card_refuses_what_a_phone_could_not_use(tmp_path: Path) -> None:
    owner = b64u_encode(bytes(SigningKey.generate().verify_key))
    made = await asyncio.to_thread(
        init_gateway, tmp_path / "gw", owner_pub=owner, bind="127.0.0.1:0"
    )
    config = str(made.config_path)
    # port 0 (any free port) is no address for a phone
    code, out, err = await threshold("card", "--config", config)
    assert (code, out) == (2, "")
    assert "--url" in err
    assert "Traceback" not in err
    for bad in ("http://192.0.2.7:8443", "https://192.0.2.7", "https://192.0.2.7:8443/x"):
        code, out, err = await threshold("card", "--config", config, "--url", bad)
        assert (code, out) == (2, ""), bad
        assert err.count("\n") == 1
        assert "Traceback" not in err
    code, out, err = await threshold(
        "card", "--config", config, "--url", "https://[fd00::7]:8443", "--no-qr"
    )
    assert code == 0, err
    assert json.loads(out)["url"] == "https://[fd00::7]:8443"
    # without TLS there is no pin to give: refused, not a card that cannot authenticate
    set_config(made.config_path, "api", "tls", "false")
    code, out, err = await threshold("card", "--config", config, "--url", "https://h:1")
    assert (code, out) == (2, "")
    assert "tls = false" in err
