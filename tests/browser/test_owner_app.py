"""The owner app in a real Chromium, against a real gateway over HTTPS on loopback.

One gateway for the module (the virtual Nuki lock through bleak over Bumble, the file camera,
SQLite), one Chromium; each "device" is a browser context with its own virtual WebAuthn
authenticator (DevTools protocol). The scenes run in the order of docs/owner-app.md and
share the gateway: the owner's device enrolled in the first scene is used by the later ones,
and the audit log is tampered with last. Screenshots of the main screens go to
docs/owner-app/.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ble.driver import LockState
from gateway.owner.notices import Notice, NoticeKind
from gateway.trust.ticket import Camera as TicketCamera
from gateway.trust.ticket import Purpose
from tests.support.browser import Device, launch
from tests.support.browser import screenshot as browser_screenshot
from tests.support.json_schema import answer_schema, problems
from tests.support.service import GatewayHarness, running_harness
from video.testvideo import generate_test_video

pytestmark = pytest.mark.asyncio(loop_scope="module")

WAIT = 15.0
MS = 15_000
DOCS = Path(__file__).resolve().parents[2] / "docs" / "owner-app"


class World:
    def __init__(self, h: GatewayHarness, browser: Any) -> None:
        self.h = h
        self.browser = browser
        self.owner: Device | None = None
        self.owner_link = ""
        self.member: Device | None = None

    @property
    def app_url(self) -> str:
        url = self.h.gateway.app_url
        assert url is not None
        return url

    async def link(self, role: str = "owner", name: str = "Ada's phone") -> str:
        made = await self.h.client.owner(
            self.h.keys.owner,
            "POST",
            "/v1/owner/enrollments",
            {"role": role, "name": name},
            expect=(201,),
        )
        return str(made["link"])

    async def events(self) -> list[dict[str, Any]]:
        reply = await self.h.client.owner(self.h.keys.owner, "GET", "/v1/owner/events?limit=1000")
        return list(reply["events"])

    async def holds(self, answer: Any, method: str, path: str) -> None:
        """``answer`` is what /v1/openapi.json says ``method path`` answers (docs/api.md)."""
        doc = (await self.h.client.call("GET", "/v1/openapi.json")).body
        found = problems(answer, answer_schema(doc, method, path, 200), doc)
        assert found == [], (method, path, found)

    async def enroll(self, device: Device, link: str) -> None:
        await device.page.goto(link)
        await device.page.get_by_role("button", name="Create a passkey").click()
        await device.page.get_by_role("heading", name="Now", level=1).wait_for()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("owner-app")
    video = generate_test_video(root / "door.mp4", seconds=3.0, fps=15, keyframe_interval=15)
    settings = {
        ("camera", "preroll_s"): "1",
        ("camera", "post_roll_s"): "0.5",
        ("camera", "read_timeout_s"): "2",
    }
    async with (
        running_harness(
            root / "gw", settings=settings, camera_url=str(video), client_rate_per_minute=100_000
        ) as h,
        launch(h.gateway.config.api.tls_cert) as browser,
    ):
        yield World(h, browser)


async def screenshot(device: Device, name: str) -> None:
    await browser_screenshot(device, DOCS, name)


async def fetch(device: Device, method: str, path: str, body: Any = None, csrf: bool = True) -> Any:
    """A request from the page itself (same origin, its cookie); returns status and JSON."""
    return await device.page.evaluate(
        """async ([method, path, body, csrf]) => {
            const me = await (await fetch("/v1/app/me")).json();
            const headers = {"Content-Type": "application/json"};
            if (csrf) headers["X-CSRF-Token"] = me.csrf;
            const init = {method, headers};
            if (body !== null) init.body = JSON.stringify(body);
            const r = await fetch(path, init);
            return {status: r.status, body: await r.json().catch(() => null)};
        }""",
        [method, path, body, csrf],
    )


# -- enroll, sign in, a replayed link --------------------------------------------------------------


async def test_enroll_a_device_with_a_passkey_and_sign_in(world: World) -> None:
    world.owner = owner = await Device.open(world.browser)
    world.owner_link = await world.link()
    await world.enroll(owner, world.owner_link)
    enrolled = [e for e in await world.events() if e["kind"] == "owner.device_enrolled"]
    assert len(enrolled) == 1
    assert enrolled[0]["body"]["role"] == "owner"
    # The session cookie is HttpOnly, Secure, SameSite=Strict, and __Host- bound to the origin.
    cookies = await owner.context.cookies()
    session = next(c for c in cookies if c["name"] == "__Host-threshold-session")
    assert session["httpOnly"]
    assert session["secure"]
    assert session["sameSite"] == "Strict"
    assert await owner.page.evaluate("document.cookie") == ""

    # Signed out (the cookie gone), the passkey signs the device in again.
    await owner.context.clear_cookies()
    await owner.page.goto(world.app_url)
    await owner.page.get_by_role("heading", name="Sign in").wait_for()
    await screenshot(owner, "sign-in")
    await owner.page.get_by_role("button", name="Sign in with a passkey").click()
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    await owner.page.locator("[data-lock=locked]").wait_for()
    assert any(e["kind"] == "owner.device_enrolled" for e in await world.events())


async def test_a_replayed_enrollment_link_is_refused(world: World) -> None:
    thief = await Device.open(world.browser)
    try:
        await thief.page.goto(world.owner_link)
        refusal = thief.page.locator("#refusal")
        await refusal.wait_for()
        assert "already used" in (await refusal.text_content() or "")
    finally:
        await thief.close()
    devices = await world.h.client.owner(world.h.keys.owner, "GET", "/v1/owner/devices")
    assert len(devices["devices"]) == 1


# -- the courier, the surveyor --------------------------------------------------------------------


async def test_a_courier_opens_the_door_and_the_owner_is_notified(world: World) -> None:
    owner = world.owner
    assert owner is not None
    await owner.page.goto(world.app_url + "#now")
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    # The live feed is open before the courier comes (the page says so when it opens).
    await owner.page.wait_for_function("() => window.__feedOpen === true")
    t = world.h.ticket(camera=TicketCamera.PREFERRED)
    reply = await world.h.open(t, package_code="PKG-1")
    session = reply.body["session"]
    await owner.page.locator("#feed li", has_text="Courier at the front door").first.wait_for()
    await owner.page.wait_for_function(
        "() => window.__notified.some(t => t.includes('Courier at the front door'))"
    )
    await screenshot(owner, "now-courier")
    # The operator's metrics time the app's hand-over as they do MQTT's (notifier="app").
    delivered = world.h.gateway.metrics.registry.get_sample_value(
        "threshold_notification_delivery_seconds_count", {"notifier": "app"}
    )
    assert delivered is not None
    assert delivered >= 1
    await world.h.done(t, session)
    await world.h.wait_session(session, "closed")
    assert world.h.gateway.camera is not None
    await world.h.gateway.camera.settle(WAIT)


async def test_the_owner_approves_a_waiting_surveyor_and_the_door_opens(world: World) -> None:
    owner = world.owner
    assert owner is not None
    survey = world.h.ticket(purpose=Purpose.SURVEY, subject="Sam Surveyor")
    waiting = (await world.h.open(survey)).body
    assert waiting["state"] == "awaiting_approval"
    session = waiting["session"]
    await owner.page.goto(world.app_url + f"#approve/{session}")
    await owner.page.get_by_text("Sam Surveyor").wait_for()
    assert await owner.page.get_by_text("owner", exact=True).count() >= 1  # the issuer
    await screenshot(owner, "approve")
    assert world.h.sim.lock.lock_state.name == "LOCKED"
    await owner.page.get_by_role("button", name="Let them in").click()
    await world.h.wait_lock(LockState.UNLOCKED)
    await world.h.wait_session(session, "open")
    granted = [
        e
        for e in await world.events()
        if e["kind"] == "session.granted" and e["body"]["session"] == session
    ]
    assert granted[0]["body"]["approved_by"].startswith("device:d-")
    await world.h.done(survey, session)
    await world.h.wait_session(session, "closed")
    await world.h.wait_lock(LockState.LOCKED)


async def test_the_live_view_shows_frames(world: World) -> None:
    owner = world.owner
    assert owner is not None
    await owner.page.goto(world.app_url + "#live")
    await owner.page.wait_for_function(
        "() => { const i = document.getElementById('live-view'); return i && i.naturalWidth > 0; }"
    )
    await screenshot(owner, "live")
    await owner.page.goto(world.app_url + "#now")  # ends the stream
    assert any(e["kind"] == "camera.live_view_started" for e in await world.events())


async def test_a_clip_plays_and_its_hash_shows_verified(world: World) -> None:
    owner = world.owner
    assert owner is not None
    await owner.page.goto(world.app_url + "#history")
    card = owner.page.locator("article.visit", has_text="courier").first
    await card.wait_for()
    assert await card.locator("[data-clip-status]").get_attribute("data-clip-status") == "verified"
    assert await card.locator("[data-verified]").get_attribute("data-verified") == "true"
    playing = await card.locator("video").evaluate(
        """async (v) => {
            v.muted = true;
            await v.play();
            await new Promise(r => v.requestVideoFrameCallback(r));
            return {time: v.currentTime, width: v.videoWidth, error: v.error && v.error.code};
        }"""
    )
    assert playing["error"] is None
    assert playing["width"] > 0
    await screenshot(owner, "history")


# -- roles, revocation ----------------------------------------------------------------------------


async def test_a_member_cannot_approve(world: World) -> None:
    world.member = member = await Device.open(world.browser)
    await world.enroll(member, await world.link("member", "Kid's tablet"))
    survey = world.h.ticket(purpose=Purpose.SURVEY, subject="Mo Meter")
    session = (await world.h.open(survey)).body["session"]
    await member.page.goto(world.app_url + f"#approve/{session}")
    await member.page.locator("#member-note").wait_for()
    assert await member.page.get_by_role("button", name="Let them in").count() == 0
    # And the API says no whatever the page shows.
    act = {"kind": "approve", "target": session}
    reply = await fetch(member, "POST", "/v1/app/acts/options", {"act": act})
    assert reply["status"] == 403
    assert reply["body"]["code"] == "role_forbidden"
    assert world.h.gateway.service is not None
    view = world.h.gateway.service.view(session)
    assert view is not None
    assert view.state == "awaiting_approval"
    # The owner allows this member device to open doors (from the app; recorded) ...
    owner = world.owner
    assert owner is not None
    await owner.page.goto(world.app_url + "#devices")
    allow = owner.page.get_by_role("button", name="Kid's tablet may open doors")
    await allow.click()
    await owner.page.locator("[aria-pressed=true]", has_text="Kid's tablet").wait_for()
    permission = [e for e in await world.events() if e["kind"] == "owner.device_permission"]
    assert permission[-1]["body"]["may_open"] is True
    assert permission[-1]["body"]["by"].startswith("device:d-")
    # ... and the member turns the visitor away, with its own passkey, recorded as its act.
    await member.page.goto(world.app_url + "#now")
    await member.page.get_by_role("heading", name="Now", level=1).wait_for()
    await member.page.goto(world.app_url + f"#approve/{session}")
    await member.page.get_by_role("button", name="Turn away").click()
    await world.h.wait_session(session, "denied")
    denied = [
        e
        for e in await world.events()
        if e["kind"] == "session.denied" and e["body"]["session"] == session
    ]
    member_id = (await fetch(member, "GET", "/v1/app/me"))["body"]["device"]
    assert denied[0]["body"]["by"] == f"device:{member_id}"
    # The root key takes the permission back; the gateway refuses at once.
    await world.h.client.owner(
        world.h.keys.owner,
        "POST",
        f"/v1/owner/devices/{member_id}/permission",
        {"may_open": False},
    )
    reply = await fetch(member, "POST", "/v1/app/acts/options", {"act": act})
    assert reply["status"] == 403
    assert reply["body"]["code"] == "role_forbidden"


async def test_a_revoked_device_is_signed_out_at_once(world: World) -> None:
    owner, member = world.owner, world.member
    assert owner is not None
    assert member is not None
    await member.page.goto(world.app_url + "#now")
    await member.page.get_by_role("heading", name="Now", level=1).wait_for()
    await owner.page.goto(world.app_url + "#devices")
    await owner.page.get_by_text("Kid's tablet").first.wait_for()
    await screenshot(owner, "devices")
    owner.page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await owner.page.get_by_role("button", name="Revoke Kid's tablet").click()
    # The member's live stream ends; the page asks who it is and shows the sign-in screen.
    await member.page.get_by_text("This device was signed out.").wait_for()
    status = await member.page.evaluate("async () => (await fetch('/v1/app/me')).status")
    assert status == 401
    # Its passkey no longer signs in.
    await member.page.get_by_role("button", name="Sign in with a passkey").click()
    await member.page.get_by_text("belongs to no enrolled device").wait_for()
    assert any(e["kind"] == "owner.device_revoked" for e in await world.events())


# -- attacks on the ceremonies and the session ----------------------------------------------------

ASSERT = """async ([act, forge]) => {
    const passkey = await import("/app/passkey.js");
    const me = await (await fetch("/v1/app/me")).json();
    const headers = {"Content-Type": "application/json", "X-CSRF-Token": me.csrf};
    const post = async (path, body) => {
        const r = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
        return {status: r.status, body: await r.json()};
    };
    const opts = await post("/v1/app/acts/options", {act});
    const credential = await passkey.get(opts.body.options);
    if (forge) {
        const sig = credential.response.signature;
        const flipped = sig[5] === "A" ? "B" : "A";
        credential.response.signature = sig.slice(0, 5) + flipped + sig.slice(6);
    }
    const body = {act, ceremony: opts.body.ceremony, credential};
    const first = await post("/v1/app/acts", body);
    const again = await post("/v1/app/acts", body);
    const other = await post("/v1/app/acts", {...body, act: {kind: "unlock", target: "front"}});
    return {first, again, other};
}"""


async def test_a_forged_or_replayed_assertion_is_refused(world: World) -> None:
    owner = world.owner
    assert owner is not None
    await owner.page.goto(world.app_url + "#now")
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    act = {"kind": "approve", "target": "s-nobody"}
    # A genuine assertion passes the check (the act then finds no such session) ...
    genuine = await owner.page.evaluate(ASSERT, [act, False])
    assert genuine["first"]["status"] == 404, genuine
    # ... and cannot be presented again, nor for another act.
    assert genuine["again"]["body"]["code"] == "assertion_refused"
    assert genuine["other"]["body"]["code"] == "assertion_refused"
    forged = await owner.page.evaluate(ASSERT, [act, True])
    assert forged["first"]["status"] == 403
    assert forged["first"]["body"]["code"] == "assertion_refused"
    assert world.h.sim.lock.lock_state.name == "LOCKED"


async def test_a_request_without_the_csrf_token_is_refused(world: World) -> None:
    owner = world.owner
    assert owner is not None
    refused = await fetch(owner, "POST", "/v1/app/doors/front/lock", {}, csrf=False)
    assert refused["status"] == 403
    assert refused["body"]["code"] == "csrf_refused"
    allowed = await fetch(owner, "POST", "/v1/app/doors/front/lock", {})
    assert allowed["status"] == 200, allowed


ENROLL = """async (token) => {
    const passkey = await import("/app/passkey.js");
    const post = async (path, body) => {
        const headers = {"Content-Type": "application/json"};
        const r = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
        return {status: r.status, body: await r.json()};
    };
    const opts = await post("/v1/app/enroll/options", {token});
    const credential = await passkey.create(opts.body.options);
    return await post("/v1/app/enroll", {ceremony: opts.body.ceremony, credential});
}"""
SIGN_IN = """async () => {
    const passkey = await import("/app/passkey.js");
    const post = async (path, body) => {
        const headers = {"Content-Type": "application/json"};
        const r = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
        return {status: r.status, body: await r.json()};
    };
    const opts = await post("/v1/app/signin/options", {});
    const credential = await passkey.get(opts.body.options);
    return await post("/v1/app/signin", {ceremony: opts.body.ceremony, credential});
}"""


async def test_the_passkey_ceremonies_answer_what_the_document_says(world: World) -> None:
    """The answers only a passkey reaches (enroll, sign in, an act of each kind), and what
    the app shows with a camera, held against /v1/openapi.json (the other routes are held
    in tests/integration/test_openapi_answers.py)."""
    owner = world.owner
    assert owner is not None
    await owner.page.goto(world.app_url + "#now")
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    signed_in = await owner.page.evaluate(SIGN_IN)
    assert signed_in["status"] == 200, signed_in
    await world.holds(signed_in["body"], "POST", "/v1/app/signin")
    # An approval: the act answers the session.
    survey = world.h.ticket(purpose=Purpose.SURVEY, subject="Ola Oneof")
    session = (await world.h.open(survey)).body["session"]
    approved = await owner.page.evaluate(ASSERT, [{"kind": "approve", "target": session}, False])
    assert approved["first"]["status"] == 200, approved
    await world.holds(approved["first"]["body"], "POST", "/v1/app/acts")
    await world.h.wait_session(session, "open")
    await world.h.done(survey, session)
    await world.h.wait_session(session, "closed")
    await world.h.wait_lock(LockState.LOCKED)
    # An unlock by hand: the act answers the door; locked again from the app.
    unlocked = await owner.page.evaluate(ASSERT, [{"kind": "unlock", "target": "front"}, False])
    assert unlocked["first"]["status"] == 200, unlocked
    await world.holds(unlocked["first"]["body"], "POST", "/v1/app/acts")
    await world.h.wait_lock(LockState.UNLOCKED)
    locked = await fetch(owner, "POST", "/v1/app/doors/front/lock", {})
    assert locked["status"] == 200, locked
    await world.h.wait_lock(LockState.LOCKED)
    # With the camera: its health in "now", the snapshots and clips in the history.
    now = await fetch(owner, "GET", "/v1/app/now")
    assert now["body"]["camera"]["configured"] is True
    await world.holds(now["body"], "GET", "/v1/app/now")
    history = (await fetch(owner, "GET", "/v1/app/history"))["body"]
    assert any(visit["clips"] for visit in history["visits"])
    await world.holds(history, "GET", "/v1/app/history")
    # A clip is no JSON: it comes as one of the media types the document names.
    doc = (await world.h.client.call("GET", "/v1/openapi.json")).body
    media = doc["paths"]["/v1/app/media/{entry}"]["get"]["responses"]["200"]["content"]
    entry = next(c["entry"] for v in history["visits"] for c in v["clips"] if c["verified"])
    kind = await owner.page.evaluate(
        "async (path) => (await fetch(path)).headers.get('Content-Type')", f"/v1/app/media/{entry}"
    )
    assert kind in media
    # A new device's enrollment answers who it now is; the root key then revokes it.
    laptop = await Device.open(world.browser)
    try:
        link = await world.link("owner", "Ada's laptop")
        await laptop.page.goto(world.app_url + "manifest.webmanifest")
        enrolled = await laptop.page.evaluate(ENROLL, link.split("#enroll=", 1)[1])
        assert enrolled["status"] == 200, enrolled
        await world.holds(enrolled["body"], "POST", "/v1/app/enroll")
    finally:
        await laptop.close()
    device = enrolled["body"]["device"]
    await world.h.client.owner(world.h.keys.owner, "POST", f"/v1/owner/devices/{device}/revoke")


# -- the shell: one origin, a strict policy, installable, starts without the network --------------


async def test_the_shell_is_strict_installable_and_starts_offline(world: World) -> None:
    owner = world.owner
    assert owner is not None
    origin = world.app_url.removesuffix("/app/")
    requested: list[str] = []
    await owner.page.goto("about:blank")
    owner.page.on("request", lambda request: requested.append(request.url))
    response = await owner.page.goto(world.app_url + "#now")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    # Nothing from any other origin: no CDN, no font, no script.
    assert requested
    assert all(url.startswith(origin + "/") for url in requested), requested
    manifest = await owner.page.evaluate(
        """async () => {
            const link = document.querySelector("link[rel=manifest]");
            return await (await fetch(link.href)).json();
        }"""
    )
    assert (manifest["start_url"], manifest["display"]) == ("/app/", "standalone")
    assert manifest["icons"]
    # The service worker holds the shell: offline, the page still starts and says so.
    await owner.page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    await owner.page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    await owner.context.set_offline(True)
    try:
        await owner.page.reload()
        await owner.page.locator("a.skip").wait_for(state="attached")
        await owner.page.get_by_role("heading", name="Sign in").wait_for()
        assert await owner.page.evaluate("document.querySelector('main').textContent") != ""
    finally:
        await owner.context.set_offline(False)
    # Back online, the same page signs in again by itself (the cookie is still good).
    await owner.page.reload()
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()


async def test_the_keyboard_alone_reaches_every_screen(world: World) -> None:
    owner = world.owner
    assert owner is not None
    page = owner.page
    await page.goto("about:blank")
    await page.goto(world.app_url + "#now")
    await page.get_by_role("heading", name="Now", level=1).wait_for()
    active = "() => document.activeElement && document.activeElement.textContent.trim()"

    async def top() -> None:
        # A click on the page's top corner (the header): the next Tab starts there.
        await page.evaluate("window.scrollTo(0, 0)")
        await page.mouse.click(1, 1)

    for name in ("Live", "History", "Devices", "Now"):
        await top()
        seen = []
        for _ in range(8):
            await page.keyboard.press("Tab")
            seen.append(await page.evaluate(active))
            if seen[-1] == name:
                break
        else:
            raise AssertionError(f"Tab never reached the {name} link: {seen}")
        await page.keyboard.press("Enter")
        heading = {"Live": "Live view"}.get(name, name)
        await page.get_by_role("heading", name=heading, level=1).wait_for()
        # The screen's content takes the focus (a screen reader reads the new screen).
        await page.wait_for_function("() => document.activeElement.id === 'main'")
        if name == "History":
            # The skip link, the page's first stop, moves the focus and stays on the screen.
            await top()
            await page.keyboard.press("Shift+Tab")
            assert await page.evaluate(active) == "Skip to content"
            await page.keyboard.press("Enter")
            await page.wait_for_function("() => document.activeElement.id === 'main'")
            assert await page.get_by_role("heading", name="History", level=1).count() == 1
    # A notice refreshes the screen without taking the focus from where the owner put it.
    await top()
    await page.keyboard.press("Tab")
    before = await page.evaluate(active)
    assert before in ("Now", "Live", "History", "Devices")
    text = "A refresh, not a new screen"
    world.h.gateway.feed.notify(
        Notice(NoticeKind.DOOR_RELOCKED, "front", "s-x", "", text, False, 0)
    )
    await page.locator("#feed li", has_text=text).wait_for()
    assert await page.evaluate(active) == before


# -- last: the audit log is tampered with ---------------------------------------------------------


async def test_a_tampered_row_shows_unverified(world: World) -> None:
    owner = world.owner
    assert owner is not None
    clip = next(e for e in await world.events() if e["kind"] == "clip.recorded")
    # The attacker has the database file: drop the append-only trigger, rewrite the entry.
    conn = sqlite3.connect(world.h.gateway.config.database)
    try:
        conn.execute("DROP TRIGGER audit_entry_no_update")
        leaf = conn.execute(
            "SELECT leaf_bytes FROM audit_entry WHERE idx = ?", (clip["index"],)
        ).fetchone()[0]
        forged = bytes([leaf[0] ^ 1]) + bytes(leaf[1:])
        conn.execute("UPDATE audit_entry SET leaf_bytes = ? WHERE idx = ?", (forged, clip["index"]))
        conn.commit()
    finally:
        conn.close()
    await owner.page.goto(world.app_url + "#now")
    await owner.page.goto(world.app_url + "#history")
    await owner.page.locator("#log-state", has_text="does not verify").wait_for()
    history = (await fetch(owner, "GET", "/v1/app/history"))["body"]
    assert history["log"]["ok"] is False
    await world.holds(history, "GET", "/v1/app/history")
    card = owner.page.locator("article.visit", has_text="courier").first
    assert await card.locator("[data-verified]").get_attribute("data-verified") == "false"
    assert await card.locator("[data-clip-status]").get_attribute("data-clip-status") == (
        "log_unverified"
    )
    await screenshot(owner, "history-tampered")
