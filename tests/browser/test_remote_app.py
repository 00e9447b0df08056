"""The owner app from away, in a real Chromium, through the relay's SNI front (docs/remote.md).

Loopback, all real: Pebble (with pebble-challtestsrv as the DNS) issues the gateway's
certificate for ``home.relay.test`` by DNS-01, the record published by the relay; the gateway
keeps its snitun tunnel to the relay; Chromium resolves ``home.relay.test`` to 127.0.0.1 (a
host-resolver rule), where a recording proxy stands in front of the relay's front, and
accepts chains under Pebble's CA (its root and intermediate, by public key). The owner
enrolls and signs in through the relay, watches the live view, approves a surveyor, and the
door opens; the relay restarts and the app carries on. Everything the relay's side read and
wrote is TLS records, with none of the markers planted in the page, the video or the
approval.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ble.driver import LockState
from cloud.relay import RelayServer
from gateway.app.identity import load_signing_key
from gateway.app.wiring import Gateway as GatewayService
from gateway.trust.ticket import Purpose
from tests.support.browser import Device, launch_trusting
from tests.support.pebble import Pebble, running_pebble
from tests.support.remote import (
    DOMAIN,
    Gateway,
    RecordingProxy,
    start_remote_relay,
    tls_records_only,
)
from tests.support.service import (
    GATEWAY_ID,
    GatewayClient,
    GatewayHarness,
    Keys,
    make_gateway_dir,
    set_cloud,
    set_config,
    start_gateway,
)
from video.liveview import BOUNDARY
from video.testvideo import generate_test_video

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOME = f"home.{DOMAIN}"
WAIT = 30.0
SURVEYOR = "Sam Surveyor PLANTED-APPROVAL-MARKER"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spki_pin(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@dataclass
class Away:
    pebble: Pebble
    relay: RelayServer
    relay_dir: Path
    relay_port: int
    front_port: int
    proxy: RecordingProxy
    h: GatewayHarness
    gateway: Gateway
    browser: Any
    owner: Device | None = None

    @property
    def service(self) -> GatewayService:
        return self.h.gateway

    @property
    def app_url(self) -> str:
        url = self.service.app_url
        assert url is not None
        return url

    async def start_relay(self) -> None:
        self.relay, _ = await start_remote_relay(
            self.relay_dir,
            {"home": self.gateway},
            port=self.relay_port,
            front_port=self.front_port,
            challenge_dns=self.pebble.challenge_dns_url,
        )


def _configure(
    config: Path, relay_url: str, pebble: Pebble, public_port: int, lan_port: int
) -> None:
    set_cloud(config, relay_url)
    set_config(config, "app", "name", f'"{HOME}"')
    set_config(config, "remote", "enabled", "true")
    set_config(config, "remote", "name", '"home"')
    set_config(config, "remote", "domain", f'"{DOMAIN}"')
    set_config(config, "remote", "acme_directory", f'"{pebble.directory_url}"')
    set_config(config, "remote", "public_port", str(public_port))
    text = config.read_text().replace(
        '# acme_ca_file = "acme-ca.pem"', f'acme_ca_file = "{pebble.ca_file}"', 1
    )
    # The app on the home network under the same name (the router's override is Chromium's
    # host-resolver rule here: the name is 127.0.0.1 either way).
    text = text.replace('# lan_bind = "0.0.0.0:443"', f'lan_bind = "127.0.0.1:{lan_port}"', 1)
    config.write_text(text)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def away(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Away]:
    root = tmp_path_factory.mktemp("remote-app")
    video = generate_test_video(root / "door.mp4", seconds=3.0, fps=15, keyframe_interval=15)
    async with running_pebble(root / "pebble") as pebble:
        keys = Keys()
        config = await make_gateway_dir(root / "gw", keys)
        set_config(config, "camera", "preroll_s", "1")
        gateway_key = load_signing_key(root / "gw" / "gateway.key")
        home = Gateway(GATEWAY_ID, gateway_key, keys.owner)
        relay_port, front_port = _free_port(), _free_port()
        relay, relay_url = await start_remote_relay(
            root / "relay",
            {"home": home},
            port=relay_port,
            front_port=front_port,
            challenge_dns=pebble.challenge_dns_url,
        )
        proxy = RecordingProxy(front_port)
        await proxy.start()
        lan_port = _free_port()
        _configure(config, relay_url, pebble, proxy.port, lan_port)
        text = config.read_text().replace('url = ""', f'url = "{video}"', 1)
        config.write_text(text)
        service = await start_gateway(config, client_rate_per_minute=100_000)
        client = GatewayClient(service.url, fingerprint=service.fingerprint, timeout_s=WAIT)
        world: Away | None = None
        try:
            async with asyncio.timeout(WAIT):
                await service.jobs["remote certificate"].ran.wait()
            assert service.tunnel is not None, "no certificate: see the log"
            await asyncio.wait_for(service.tunnel.up.wait(), WAIT)
            pins = [_spki_pin(await pebble.root_pem()), _spki_pin(await pebble.intermediate_pem())]
            async with launch_trusting(pins, HOME) as browser:
                world = Away(
                    pebble,
                    relay,
                    root / "relay",
                    relay_port,
                    front_port,
                    proxy,
                    GatewayHarness(root / "gw", keys, service, client),
                    home,
                    browser,
                )
                yield world
        finally:
            await client.close()
            async with asyncio.timeout(WAIT):
                await service.stop()
            await proxy.stop()
            await (world.relay if world is not None else relay).stop()


async def test_the_app_is_served_under_the_remote_name_through_the_relay(away: Away) -> None:
    assert away.app_url == f"https://{HOME}:{away.proxy.port}/app/"
    made = await away.h.client.owner(
        away.h.keys.owner,
        "POST",
        "/v1/owner/enrollments",
        {"role": "owner", "name": "phone"},
        expect=(201,),
    )
    link = str(made["link"])
    assert link.startswith(away.app_url)
    away.owner = owner = await Device.open(away.browser)
    await owner.page.goto(link)
    await owner.page.get_by_role("button", name="Create a passkey").click()
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    # Signed out, the passkey signs in again, through the relay.
    await owner.context.clear_cookies()
    await owner.page.goto(away.app_url)
    await owner.page.get_by_role("button", name="Sign in with a passkey").click()
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()


async def test_the_owner_watches_live_and_approves_a_surveyor_from_away(away: Away) -> None:
    owner = away.owner
    assert owner is not None
    await owner.page.goto(away.app_url + "#live")
    await owner.page.wait_for_function(
        "() => { const i = document.getElementById('live-view'); return i && i.naturalWidth > 0; }"
    )
    await owner.page.goto(away.app_url + "#now")
    await _approve_and_open(away, owner)


async def _approve_and_open(away: Away, owner: Device) -> None:
    survey = away.h.ticket(purpose=Purpose.SURVEY, subject=SURVEYOR)
    waiting = (await away.h.open(survey)).body
    session = waiting["session"]
    await owner.page.goto(away.app_url + f"#approve/{session}")
    await owner.page.get_by_text(SURVEYOR).wait_for()
    await owner.page.get_by_role("button", name="Let them in").click()
    await away.h.wait_lock(LockState.UNLOCKED, WAIT)
    await away.h.wait_session(session, "open", WAIT)
    await away.h.done(survey, session)
    await away.h.wait_session(session, "closed", WAIT)
    await away.h.wait_lock(LockState.LOCKED, WAIT)


async def test_the_relay_restarts_and_the_app_carries_on(away: Away) -> None:
    owner = away.owner
    tunnel = away.service.tunnel
    assert owner is not None
    assert tunnel is not None
    openings = tunnel.status.openings
    await away.relay.stop()
    await asyncio.wait_for(tunnel.down.wait(), WAIT)
    await away.start_relay()
    await asyncio.wait_for(tunnel.up.wait(), WAIT)
    assert tunnel.status.openings == openings + 1
    await owner.page.goto(away.app_url + "#now")
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    await _approve_and_open(away, owner)


async def test_the_tunnel_drops_and_the_apps_feed_reconnects(away: Away) -> None:
    owner = away.owner
    tunnel = away.service.tunnel
    assert owner is not None
    assert tunnel is not None
    await owner.page.goto(away.app_url + "#now")
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    await owner.page.wait_for_function("() => window.__feedOpen === true")
    await owner.page.evaluate("() => { window.__feedOpen = false; window.__notified = []; }")
    assert away.relay.relay.front is not None
    assert away.relay.relay.front.drop(HOME)
    await asyncio.wait_for(tunnel.down.wait(), WAIT)
    await asyncio.wait_for(tunnel.up.wait(), WAIT)
    # The page was not reloaded: its live feed reconnects through the new tunnel by itself,
    # and the next notice reaches it.
    await owner.page.wait_for_function("() => window.__feedOpen === true", timeout=WAIT * 1000)
    await _approve_and_open(away, owner)
    notified = await owner.page.evaluate("() => window.__notified")
    assert any("approval" in text.lower() for text in notified), notified


async def _served_serial(away: Away) -> int:
    """The serial of the certificate a browser gets for the remote name now, verified under
    Pebble's root."""
    context = ssl.create_default_context(cadata=await away.pebble.root_pem())
    _, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", away.proxy.port, ssl=context, server_hostname=HOME),
        WAIT,
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return int(x509.load_der_x509_certificate(der).serial_number)
    finally:
        writer.close()


async def test_the_certificate_nears_expiry_and_is_renewed_in_service(away: Away) -> None:
    owner = away.owner
    certificate = away.service.remote_certificate
    assert owner is not None
    assert certificate is not None
    before = await _served_serial(away)
    info = certificate.current
    assert info is not None
    assert not certificate.due()
    # A fifth of its lifetime left: due (the threshold is 0.3).
    certificate.clock = lambda: info.not_after - (info.not_after - info.not_before) / 5
    await away.service.check_remote_certificate()
    after = await _served_serial(away)
    assert after != before
    assert stat.S_IMODE(certificate.path.stat().st_mode) == 0o600
    # The app carries on under the new certificate.
    await owner.page.goto(away.app_url + "#now")
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()


async def test_remote_status_shows_the_name_the_certificate_and_the_tunnel(away: Away) -> None:
    config = away.h.directory / "threshold.toml"
    assert config.is_file()
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "remote", "status", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["host_name"] == HOME
    assert status["certificate"]["names"] == [HOME]
    assert status["certificate"]["renewal_due"] is False
    assert status["tunnel"]["state"] == "up"
    assert status["tunnel"]["openings"] >= 3  # first, after the relay's restart, after the cut
    assert "token" not in result.stdout
    assert "aes" not in result.stdout


async def test_at_home_with_the_internet_down_the_same_passkey_works_on_the_lan(
    away: Away,
) -> None:
    owner = away.owner
    lan = away.service.config.remote.lan_origin
    assert owner is not None
    assert lan is not None
    assert lan != f"https://{HOME}:{away.proxy.port}"
    await away.relay.stop()  # no relay: the internet is down
    try:
        home = lan + "/app/"
        await owner.context.clear_cookies()
        await owner.page.goto(home)
        await owner.page.get_by_role("button", name="Sign in with a passkey").click()
        await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
        # An act bound to a passkey assertion from the LAN origin, under the one RP ID.
        survey = away.h.ticket(purpose=Purpose.SURVEY, subject="Sam at home")
        session = (await away.h.open(survey)).body["session"]
        await owner.page.goto(home + f"#approve/{session}")
        await owner.page.get_by_role("button", name="Let them in").click()
        await away.h.wait_lock(LockState.UNLOCKED, WAIT)
        await away.h.done(survey, session)
        await away.h.wait_lock(LockState.LOCKED, WAIT)
    finally:
        await away.start_relay()
    tunnel = away.service.tunnel
    assert tunnel is not None
    await asyncio.wait_for(tunnel.up.wait(), WAIT)


async def test_the_app_takes_its_two_origins_and_no_other(away: Away) -> None:
    """Under the one name, the remote origin and the LAN origin pass the origin check (and
    then want a session); the same host on another port, or another host, is refused."""
    lan = away.service.config.remote.lan_origin
    assert lan is not None
    port = int(lan.rsplit(":", 1)[1])
    context = ssl.create_default_context(cadata=await away.pebble.root_pem())
    answers = {}
    async with aiohttp.ClientSession() as session:
        for origin in (
            f"https://{HOME}:{away.proxy.port}",
            lan,
            f"https://{HOME}:1",
            f"https://{HOME}",
            "https://evil.example",
        ):
            async with session.post(
                f"https://127.0.0.1:{port}/v1/app/signin/options",
                headers={"Origin": origin, "Host": f"{HOME}:{port}"},
                ssl=context,
                server_hostname=HOME,
                json={},
            ) as response:
                answers[origin] = (response.status, (await response.json()).get("code"))
    assert answers[f"https://{HOME}:{away.proxy.port}"][0] == 200
    assert answers[lan][0] == 200
    for refused in (f"https://{HOME}:1", f"https://{HOME}", "https://evil.example"):
        assert answers[refused] == (403, "csrf_refused"), (refused, answers[refused])


async def test_the_relay_saw_only_tls_records(away: Away) -> None:
    to_relay, from_relay = away.proxy.to_relay, away.proxy.from_relay
    assert len(to_relay) > 10_000
    assert len(from_relay) > 100_000  # the live view's frames went through
    for connection in away.proxy.connections:
        # Each connection by itself; one the relay's restart cut may end mid-record.
        assert tls_records_only(bytes(connection.to_relay), cut=True)
        assert tls_records_only(bytes(connection.from_relay), cut=True)
        if connection.to_relay:
            assert connection.to_relay[:1] == b"\x16"  # a ClientHello, never plaintext first
    both = to_relay + from_relay
    for marker in (
        SURVEYOR.encode(),
        b"PLANTED",
        BOUNDARY.encode(),
        b"image/jpeg",
        b"HTTP/1.1",
        b"/v1/app",
        b"__Host-threshold-session",
        b"Let them in",
    ):
        assert marker not in both, marker
