"""The remote name's certificate from Pebble by ACME DNS-01, the TXT record published by the
relay on the gateway's signed request (docs/remote.md, "Certificates a browser trusts")."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from nacl.signing import SigningKey

from cloud.relay import Relay, RelayServer
from cloud.remote_config import RemoteConfig
from cloud.remote_names import NameTable
from gateway.remote.certificate import RemoteCertificate
from gateway.remote.errors import RelayRefused
from gateway.remote.relay_api import RelayAccess, RelayApi
from gateway.remote.settings import RemoteConfig as GatewayRemote
from tests.support.pebble import Pebble, running_pebble
from tests.support.remote import DOMAIN, Gateway

HOME = f"home.{DOMAIN}"


async def _relay(directory: Path, pebble: Pebble, names: dict[str, Gateway]) -> RelayServer:
    table = NameTable(DOMAIN, {name: gw.gateway_id for name, gw in names.items()})
    remote = RemoteConfig(table, "127.0.0.1", 0, None, pebble.challenge_dns_url)
    relay = Relay(directory, remote=remote)
    for gw in names.values():
        await relay.register_gateway(
            gw.gateway_id, bytes(gw.key.verify_key), bytes(gw.owner.verify_key)
        )
    server = RelayServer(relay)
    await server.start()
    return server


def _settings(pebble: Pebble, name: str = "home") -> GatewayRemote:
    return GatewayRemote(
        enabled=True,
        name=name,
        domain=DOMAIN,
        acme_directory=pebble.directory_url,
        acme_ca_file=str(pebble.ca_file),
    )


async def test_the_gateway_gets_and_renews_its_remote_certificate(tmp_path: Path) -> None:
    home = Gateway("gw-home", SigningKey.generate())
    async with running_pebble(tmp_path / "pebble") as pebble:
        server = await _relay(tmp_path / "relay", pebble, {"home": home})
        api = RelayApi(RelayAccess(f"http://127.0.0.1:{server.port}", home.gateway_id, home.key))
        now = [dt.datetime.now(dt.UTC)]
        certificate = RemoteCertificate(
            api, _settings(pebble), tmp_path / "gw", clock=lambda: now[0]
        )
        (tmp_path / "gw").mkdir()
        try:
            assert certificate.due()
            assert await certificate.ensure()
            info = certificate.current
            assert info is not None
            assert info.names == (HOME,)
            pem = certificate.path.read_bytes()
            # The key and the chain in one file, readable by the gateway alone.
            assert stat.S_IMODE(certificate.path.stat().st_mode) == 0o600
            assert stat.S_IMODE((tmp_path / "gw/remote-acme-account.key").stat().st_mode) == 0o600
            key = load_pem_private_key(pem, None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            leaf = x509.load_pem_x509_certificate(pem)
            assert leaf.public_key() == key.public_key()
            # Issued under Pebble's chain (Pebble's root is served by its management API).
            chain = x509.load_pem_x509_certificates(pem)
            assert len(chain) >= 2
            root = x509.load_pem_x509_certificate((await pebble.root_pem()).encode())
            chain[-1].verify_directly_issued_by(root)
            serial = leaf.serial_number

            # Fresh: nothing to do.
            assert not await certificate.ensure()
            # Near its expiry (a third of its lifetime left): renewed, on a new key.
            now[0] = info.not_after - (info.not_after - info.not_before) / 4
            assert certificate.due()
            assert await certificate.ensure()
            renewed = x509.load_pem_x509_certificate(certificate.path.read_bytes())
            assert renewed.serial_number != serial
            assert renewed.public_key() != leaf.public_key()
        finally:
            await api.close()
            await server.stop()


async def test_a_gateway_cannot_have_the_relay_publish_another_names_challenge(
    tmp_path: Path,
) -> None:
    home = Gateway("gw-home", SigningKey.generate())
    mallory = Gateway("gw-m", SigningKey.generate())
    async with running_pebble(tmp_path / "pebble") as pebble:
        server = await _relay(tmp_path / "relay", pebble, {"home": home, "mallory": mallory})
        url = f"http://127.0.0.1:{server.port}"
        api = RelayApi(RelayAccess(url, mallory.gateway_id, mallory.key))
        try:
            with pytest.raises(RelayRefused, match="name_not_yours"):
                await api.publish_challenge("home", "A" * 43)
            with pytest.raises(RelayRefused, match="name_not_yours"):
                await api.withdraw_challenge("home")
            # And she cannot get home's certificate through her own gateway's requests.
            (tmp_path / "m").mkdir()
            certificate = RemoteCertificate(api, _settings(pebble, "home"), tmp_path / "m")
            with pytest.raises(RelayRefused):
                await certificate.ensure()
            assert certificate.current is None
        finally:
            await api.close()
            await server.stop()
