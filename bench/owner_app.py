"""Benchmark of the owner app. Prints ONE JSON line (docs/owner-app.md has the figures).

Everything in the same run, on the same (shared, noisy) machine, real HTTPS on loopback, the
virtual Nuki lock through bleak over Bumble:

* ``notify_ms_p50`` / ``notify_ms_p99``: from the grant's commit (the access observer's
  ``GrantCommitted``, which comes right after the durable ``granted`` transaction) to the
  notice arriving at a Server-Sent Events client of ``/v1/app/events/stream``, over
  ``--visits`` courier visits (target p99 <= 250);
* ``notify_browser_ms_p50`` / ``notify_browser_ms_p99``: the same, to an ``EventSource`` in
  Chromium on the app's page (the event in the browser, handed back to the benchmark through
  a Playwright binding, which adds a DevTools round trip), over ``--browser-visits`` visits;
* ``audit_commit_ms_p50``: one durable audit append through the same store (the floor a
  notice can never beat, since a grant is a commit);
* ``app_first_paint_ms``: Chromium's first contentful paint of the app's main screen (Now),
  signed in, on loopback, a fresh profile; ``app_ready_ms``: until the doors are shown;
* ``first_visit_kb``: what the first visit transfers: the page's own requests (resource
  timing), plus every file of the app, which the service worker caches on install (an
  upper bound: target <= 300).

The SSE client and the browser get a session straight from the gateway's session table, for
a device record written directly (the benchmark measures the feed and the page, not the
passkey ceremony, which the browser tests cover).

Usage: ``.venv/bin/python bench/owner_app.py [--visits 200] [--browser-visits 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nacl.signing import SigningKey

from gateway.access.observer import AccessEvent, GrantCommitted
from gateway.api.owner_app import COOKIE, load_assets
from gateway.app.config import load
from gateway.app.provision import init_gateway
from gateway.app.tls import chromium_spki_pin
from gateway.app.wiring import Gateway, Overrides
from gateway.clients.lan import GatewayClient
from gateway.owner.acts import Role
from gateway.trust.base64url import b64u_encode
from tests.support.browser import ARGS, chromium_or_fail
from tests.support.service import make_ticket

GATEWAY_ID = "gw-test"  # make_ticket's audience


class CommitTimes:
    """The access observer of the run: when each grant was committed."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def observe(self, event: AccessEvent) -> None:
        if isinstance(event, GrantCommitted):
            self.at[event.session] = time.perf_counter()


async def _sse(
    url: str, cookie: str, received: dict[str, float], ready: asyncio.Event, got: asyncio.Event
) -> None:
    import aiohttp

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # loopback, the gateway's own self-signed certificate
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(
            url + "/v1/app/events/stream", headers={"Cookie": f"{COOKIE}={cookie}"}, ssl=context
        ) as response,
    ):
        assert response.status == 200, response.status
        ready.set()
        async for line in response.content:
            if line.startswith(b"data: "):
                notice = json.loads(line[6:])
                received.setdefault(notice["session"], time.perf_counter())
                got.set()


async def _visits(
    gateway: Gateway,
    owner: SigningKey,
    count: int,
    received: dict[str, float],
    got: asyncio.Event,
) -> None:
    """``count`` courier visits, one at a time, each waiting for its notice in ``received``."""
    service = gateway.service
    assert service is not None
    async with GatewayClient(gateway.url, fingerprint=gateway.fingerprint) as client:
        for _ in range(count):
            t = make_ticket(owner)
            reply = await client.open(
                gateway_id=GATEWAY_ID,
                ticket=t.token,
                jti=t.jti,
                holder=t.holder,
                door=t.door,
                package_code="PKG-1",
            )
            session = reply.body["session"]
            async with asyncio.timeout(10):
                while session not in received:
                    got.clear()
                    await got.wait()
            await client.done(gateway_id=GATEWAY_ID, session_id=session, jti=t.jti, holder=t.holder)
            await service.wait_for(lambda s=session: _closed(service, s), 10)


def _closed(service: Any, session: str) -> bool:
    view = service.view(session)
    return view is not None and view.state == "closed"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _paint(
    gateway: Gateway, cookie: str, owner: SigningKey, visits: int, commits: CommitTimes
) -> dict[str, float]:
    from playwright.async_api import async_playwright

    pin = chromium_spki_pin(gateway.config.api.tls_cert)
    args = [
        *ARGS,
        f"--ignore-certificate-errors-spki-list={pin}",
        "--host-resolver-rules=MAP localhost 127.0.0.1",
    ]
    assert gateway.owner_app is not None
    origin = gateway.owner_app.origin
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_or_fail(), args=args)
        try:
            context = await browser.new_context(viewport={"width": 400, "height": 860})
            await context.add_cookies(
                [
                    {
                        "name": COOKIE,
                        "value": cookie,
                        "url": origin,
                        "secure": True,
                        "httpOnly": True,
                        "sameSite": "Strict",
                    }
                ]
            )
            page = await context.new_page()
            await page.goto(origin + "/app/#now")
            await page.locator("[data-lock]").first.wait_for(timeout=20_000)
            timing = await page.evaluate(
                """() => {
                    const nav = performance.getEntriesByType("navigation")[0];
                    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
                    const all = [nav, ...performance.getEntriesByType("resource")];
                    return {
                        fcp: fcp ? fcp.startTime : null,
                        ready: performance.now(),
                        bytes: all.reduce((n, e) => n + (e.transferSize || 0), 0),
                    };
                }"""
            )
            # The notices, as an EventSource on the app's page receives them.
            seen: dict[str, float] = {}
            got = asyncio.Event()

            def notice_seen(session: str) -> None:
                seen.setdefault(session, time.perf_counter())
                got.set()

            await page.expose_function("benchNoticeSeen", notice_seen)
            await page.evaluate(
                """(after) => new Promise((resolve, reject) => {
                    const es = new EventSource(`/v1/app/events/stream?after=${after}`);
                    es.addEventListener("open", () => resolve(true));
                    es.addEventListener("error", () => reject(new Error("stream failed")));
                    es.addEventListener("notice", (e) => {
                        window.benchNoticeSeen(JSON.parse(e.data).session);
                    });
                })""",
                gateway.feed.last_seq,
            )
            await _visits(gateway, owner, visits, seen, got)
            in_browser = [(seen[s] - commits.at[s]) * 1000 for s in seen if s in commits.at]
        finally:
            await browser.close()
    shell = sum(len(a.body) for a in load_assets().values())
    return {
        "browser_visits": len(in_browser),
        "notify_browser_ms_p50": round(statistics.median(in_browser), 2),
        "notify_browser_ms_p99": round(_p(in_browser, 0.99), 2),
        "app_first_paint_ms": round(timing["fcp"], 1),
        "app_ready_ms": round(timing["ready"], 1),
        "first_visit_kb": round((timing["bytes"] + shell) / 1024, 1),
        "page_transfer_kb": round(timing["bytes"] / 1024, 1),
    }


async def run(visits: int, browser_visits: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="threshold-bench-app-") as tmp:
        owner = SigningKey.generate()
        result = await asyncio.to_thread(
            init_gateway,
            Path(tmp) / "gw",
            owner_pub=b64u_encode(bytes(owner.verify_key)),
            gateway_id=GATEWAY_ID,
            timezone="UTC",
            bind="127.0.0.1:0",
            allow_without_camera=True,
        )
        commits = CommitTimes()
        overrides = Overrides(
            port=0,
            mdns=False,
            client_rate_per_minute=10**7,
            ticket_rate_per_minute=10**7,
            metrics_port=0,
        )
        gateway = Gateway(load(result.config_path), overrides, observer=commits)
        await gateway.start()
        try:
            assert gateway.owner_app is not None
            assert gateway.store is not None
            assert gateway.service is not None
            # A device record for the sessions (no passkey ceremony: the browser tests do that).
            await gateway.store.transact(
                lambda tx: tx.devices.add_device(
                    "d-bench", b"bench", b"bench", 0, "owner", "Bench", tx.now_ms()
                )
            )
            cookie, _ = gateway.owner_app.sessions.start("d-bench", Role.OWNER)
            received: dict[str, float] = {}
            ready, got = asyncio.Event(), asyncio.Event()
            reader = asyncio.ensure_future(_sse(gateway.url, cookie, received, ready, got))
            await asyncio.wait_for(ready.wait(), 10)
            await _visits(gateway, owner, visits, received, got)
            reader.cancel()
            notify = [(received[s] - commits.at[s]) * 1000 for s in commits.at if s in received]
            commit_ms = []
            for i in range(50):
                start = time.perf_counter()
                await gateway.store.append("bench.commit", {"i": i})
                commit_ms.append((time.perf_counter() - start) * 1000)
            second, _ = gateway.owner_app.sessions.start("d-bench", Role.OWNER)
            paint = await _paint(gateway, second, owner, browser_visits, commits)
        finally:
            await gateway.stop()
    return {
        "visits": len(notify),
        "notify_ms_p50": round(statistics.median(notify), 2),
        "notify_ms_p99": round(_p(notify, 0.99), 2),
        "audit_commit_ms_p50": round(statistics.median(commit_ms), 2),
        **paint,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visits", type=int, default=200)
    parser.add_argument("--browser-visits", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.visits, args.browser_visits))), flush=True)


if __name__ == "__main__":
    main()
