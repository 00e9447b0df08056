"""A real Chromium for the owner app's tests: Debian's ``chromium``, launched by path through
Playwright (never a downloaded browser), trusting the test gateway's self-signed certificate
by its public key, with a virtual WebAuthn authenticator from the DevTools protocol.

A missing browser FAILS with the install hint: the app is tested in a browser or not at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app.tls import chromium_spki_pin

CHROMIUM = os.environ.get("THRESHOLD_CHROMIUM", "/usr/bin/chromium")
INSTALL_HINT = (
    "the owner app's tests need Debian's Chromium: run ./scripts/setup.sh --test "
    "(or: sudo apt-get install chromium), or set THRESHOLD_CHROMIUM to a Chromium binary"
)
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_or_fail() -> str:
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    return path


@contextlib.asynccontextmanager
async def launch(cert_path: Path) -> AsyncIterator[Any]:
    """Chromium (a fresh profile) trusting ``cert_path``, ``localhost`` on 127.0.0.1."""
    async with launch_trusting([chromium_spki_pin(cert_path)], "localhost") as browser:
        yield browser


@contextlib.asynccontextmanager
async def launch_trusting(spki_pins: list[str], host: str) -> AsyncIterator[Any]:
    """Chromium (a fresh profile) accepting chains with one of ``spki_pins`` (base64 SHA-256
    of a SubjectPublicKeyInfo: a CA's, for the remote tests) and resolving ``host`` to
    127.0.0.1."""
    from playwright.async_api import async_playwright

    executable = chromium_or_fail()
    args = [
        *ARGS,
        f"--ignore-certificate-errors-spki-list={','.join(spki_pins)}",
        f"--host-resolver-rules=MAP {host} 127.0.0.1",
    ]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=args, timeout=30_000)
        try:
            yield browser
        finally:
            await browser.close()


NOTIFICATION_SPY = """
window.__notified = [];
const record = (title, options) => window.__notified.push((options && options.body) || title);
window.Notification = class extends EventTarget {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { super(); record(title, options); }
};
if (window.ServiceWorkerRegistration) {
  ServiceWorkerRegistration.prototype.showNotification = function (title, options) {
    record(title, options);
    return Promise.resolve();
  };
}
"""


class Device:
    """One browser context with its own virtual authenticator (one phone or laptop)."""

    def __init__(self, context: Any, page: Any, cdp: Any, authenticator: str) -> None:
        self.context = context
        self.page = page
        self.cdp = cdp
        self.authenticator = authenticator

    @classmethod
    async def open(cls, browser: Any) -> Device:
        context = await browser.new_context(viewport={"width": 400, "height": 860})
        await context.add_init_script(NOTIFICATION_SPY)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        cdp = await context.new_cdp_session(page)
        await cdp.send("WebAuthn.enable")
        added = await cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        return cls(context, page, cdp, added["authenticatorId"])

    async def close(self) -> None:
        await self.context.close()


async def screenshot(device: Device, docs: Path, name: str) -> None:
    """Render the page as a PNG. The docs' pictures (``docs/<name>.png``) are rewritten only
    when asked (``THRESHOLD_DOCS_SCREENSHOTS=1``), so a test run leaves the checkout as it
    was."""
    png = await device.page.screenshot(full_page=True)
    assert png.startswith(b"\x89PNG"), name
    if os.environ.get("THRESHOLD_DOCS_SCREENSHOTS") == "1":
        _keep(docs / f"{name}.png", png)


def _keep(path: Path, png: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
