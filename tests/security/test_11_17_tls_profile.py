"""Issue 11, finding 17: the LAN API's TLS fell short of Mozilla's "intermediate" profile.

A scanner's view, with Python's own ssl client offering one thing at a time: TLS 1.2 CBC
suites and the X448 and P-521 groups were accepted; the certificate had no key identifiers,
named 0.0.0.0 when bound to every address, and lived ten years. Each probe that must be
refused has a twin that must succeed, so a probe that could never connect proves nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.app.provision import init_gateway
from gateway.app.tls import host_names, make_certificate
from gateway.clients.lan import GatewayClient
from gateway.trust.tls_pin import spki_fingerprint
from tests.support.service import GATEWAY_ID, WAIT, GatewayHarness, Keys, harness, start_gateway

__all__ = ["harness"]


def handshake(
    port: int,
    *,
    version: ssl.TLSVersion,
    ciphers: str | None = None,
    curve: str | None = None,
) -> tuple[str, str]:
    """One TLS handshake offering only what is given; (protocol, cipher) or ssl.SSLError."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.minimum_version = client.maximum_version = version
    if ciphers is not None:
        client.set_ciphers(ciphers)
    if curve is not None:
        client.set_ecdh_curve(curve)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw,
        client.wrap_socket(raw) as tls,
    ):
        cipher = tls.cipher()
        assert cipher is not None
        return str(tls.version()), cipher[0]


async def probe(port: int, **offer: object) -> tuple[str, str] | None:
    """The handshake in a thread (the gateway answers on this loop); None when refused."""
    try:
        return await asyncio.to_thread(handshake, port, **offer)  # type: ignore[arg-type]
    except ssl.SSLError:
        return None


TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize(
    "suite",
    [
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-ECDSA-AES256-SHA384",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
    ],
)
async def test_tls12_cbc_suites_are_refused(harness: GatewayHarness, suite: str) -> None:
    port = harness.gateway.port
    assert await probe(port, version=TLS12, ciphers=suite) is None
    good = await probe(port, version=TLS12, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    assert good == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")


@pytest.mark.parametrize("version", [TLS12, TLS13])
async def test_p521_is_refused_p256_is_offered(
    harness: GatewayHarness, version: ssl.TLSVersion
) -> None:
    port = harness.gateway.port
    assert await probe(port, version=version, curve="secp521r1") is None
    assert await probe(port, version=version, curve="prime256v1") is not None


async def openssl_handshake(port: int, group: str, version: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-groups",
        group,
        version,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), WAIT)
    return proc.returncode == 0 and b"Cipher is (NONE)" not in out


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
async def test_x448_is_refused(harness: GatewayHarness, version: str) -> None:
    # Python's ssl cannot offer X448, so the probe is OpenSSL's own client.
    if shutil.which("openssl") is None:
        pytest.fail("openssl is missing: run ./scripts/setup.sh --test (apt-get install openssl)")
    port = harness.gateway.port
    assert not await openssl_handshake(port, "X448", version)
    assert await openssl_handshake(port, "P-256", version)


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


async def test_certificate_has_key_identifiers_and_a_year_to_live(harness: GatewayHarness) -> None:
    cert = certificate(harness.directory / "tls.crt")
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest  # self-signed: its own key is the authority's
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=367)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    # The pin is the key's: what the server presents hashes to what /v1/info publishes.
    der = cert.public_bytes(serialization.Encoding.DER)
    assert spki_fingerprint(der) == harness.gateway.fingerprint


def test_bound_to_every_address_the_certificate_never_names_0_0_0_0(tmp_path: Path) -> None:
    init_gateway(
        tmp_path / "gw", owner_pub=Keys().owner_pub, gateway_id=GATEWAY_ID, bind="0.0.0.0:0"
    )
    alt = certificate(tmp_path / "gw" / "tls.crt").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    ips = [ip.compressed for ip in alt.value.get_values_for_type(x509.IPAddress)]
    assert "0.0.0.0" not in ips
    assert "127.0.0.1" in ips
    assert f"{GATEWAY_ID}.local" in alt.value.get_values_for_type(x509.DNSName)


async def test_a_certificate_near_expiry_is_renewed_with_the_same_key(tmp_path: Path) -> None:
    result = await asyncio.to_thread(
        init_gateway,
        tmp_path / "gw",
        owner_pub=Keys().owner_pub,
        gateway_id=GATEWAY_ID,
        bind="127.0.0.1:0",
        allow_without_camera=True,
    )
    directory = tmp_path / "gw"
    # The same key's certificate, issued 350 days ago: 15 days left.
    old = make_certificate(
        (directory / "tls.key").read_bytes(),
        GATEWAY_ID,
        host_names(GATEWAY_ID, "127.0.0.1"),
        dt.datetime.now(dt.UTC) - dt.timedelta(days=350),
    )
    (directory / "tls.crt").write_bytes(old)
    gateway = await start_gateway(result.config_path)
    try:
        renewed = certificate(directory / "tls.crt")
        assert renewed.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=360)
        assert gateway.fingerprint == result.tls_fingerprint  # the key, hence the pin, stays
        # A phone that pinned the key at init still connects, to the renewed certificate.
        async with GatewayClient(gateway.url, fingerprint=result.tls_fingerprint) as phone:
            assert (await phone.info())["gateway_id"] == GATEWAY_ID
    finally:
        async with asyncio.timeout(WAIT):
            await gateway.stop()
