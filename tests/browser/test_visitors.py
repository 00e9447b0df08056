"""Keys for people in a real Chromium (issue 16), against a real gateway over HTTPS on
loopback with the virtual lock (bleak over Bumble) and SQLite.

Two browser contexts: the owner's (a virtual WebAuthn authenticator) invites a cleaner from
the Visitors screen; the cleaner's opens the link, makes a non-extractable WebCrypto Ed25519
key, opens the door inside the window (the lock unlocks), leaves with ``done`` and keeps the
receipt, is refused outside the window with the next window named, and renews the weekly
ticket by itself when its clock is a week on. A third context opening the claimed link is
refused; the cleaner's two openings "in all" hold across the renewal; the owner withdraws the
key and the cleaner is refused at once; a dog walker opens once per visit. Screenshots for
docs/visitors.md go to docs/visitors/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from ble.driver import LockState
from gateway.owner.household import household_certificate
from gateway.trust.certificate import sign_certificate
from tests.support.browser import Device, launch, screenshot
from tests.support.json_schema import answer_schema, problems
from tests.support.service import GATEWAY_ID, GatewayHarness, running_harness, secret64

pytestmark = pytest.mark.asyncio(loop_scope="module")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "visitors"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class World:
    def __init__(self, h: GatewayHarness, browser: Any) -> None:
        self.h = h
        self.browser = browser
        self.owner: Device | None = None
        self.cleaner: Device | None = None
        self.link = ""
        #: The owner app's answers about invitations, as the page received them.
        self.answers: list[Any] = []

    async def events(self) -> list[dict[str, Any]]:
        reply = await self.h.client.owner(self.h.keys.owner, "GET", "/v1/owner/events?limit=1000")
        return list(reply["events"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("visitors")
    async with (
        running_harness(root / "gw", client_rate_per_minute=100_000) as h,
        launch(h.gateway.config.api.tls_cert) as browser,
    ):
        visitors = h.gateway.visitors
        assert visitors is not None
        cert = household_certificate(
            visitors.household.public_key, GATEWAY_ID, ("front",), datetime.now(UTC)
        )
        await h.client.owner(
            h.keys.owner,
            "POST",
            "/v1/owner/household-issuer",
            {"certificate": sign_certificate(cert, secret64(h.keys.owner))},
        )
        yield World(h, browser)


async def shot(device: Device, name: str) -> None:
    await screenshot(device, DOCS, name)


def shift_gateway_clock(world: World, by: timedelta) -> None:
    """Simulated time on the gateway: the door's and the invitations' clock moved ``by``."""
    service = world.h.gateway.service
    visitors = world.h.gateway.visitors
    assert service is not None
    assert visitors is not None

    def clock() -> datetime:
        return datetime.now(UTC) + by

    service.clock = clock
    visitors.clock = clock


async def test_the_owner_invites_a_cleaner_with_a_passkey(world: World) -> None:
    made = await world.h.client.owner(
        world.h.keys.owner,
        "POST",
        "/v1/owner/enrollments",
        {"role": "owner", "name": "Ada"},
        expect=(201,),
    )
    world.owner = owner = await Device.open(world.browser)
    owner.page.on(
        "response",
        lambda r: world.answers.append(r) if "/v1/app/invitations" in r.url else None,
    )
    await owner.page.goto(str(made["link"]))
    await owner.page.get_by_role("button", name="Create a passkey").click()
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    await owner.page.get_by_role("link", name="Visitors").click()
    await owner.page.get_by_role("heading", name="Visitors", level=1).wait_for()
    page = owner.page
    await page.get_by_label("Name").fill("Maria")
    await page.get_by_label("Who").select_option("cleaner")
    # Today (the home's zone is UTC here), all day: inside the window now.
    today = DAYS[datetime.now(UTC).weekday()]
    for box in await page.locator("fieldset.window input[type=checkbox]").all():
        await box.set_checked(await box.get_attribute("value") == today)
    await page.locator("input[name=w0-start]").fill("00:00")
    await page.locator("input[name=w0-end]").fill("23:59")
    await page.get_by_label("Only when the camera is working").set_checked(False)
    # Twice in all: once in the window below, once after the renewal; the third is refused.
    await page.get_by_label("Door openings in all").fill("2")
    await shot(owner, "invite-form")
    await page.get_by_role("button", name="Invite with my passkey").click()
    link = page.locator("#invitation-link")
    await link.wait_for()
    world.link = (await link.text_content() or "").strip()
    assert "/visit/#invite=" in world.link
    # The QR code: a real SVG element, drawn.
    qr = page.get_by_role("img", name="QR code of the invitation link")
    box = await qr.bounding_box()
    assert box is not None
    assert box["width"] > 100
    assert await qr.evaluate("n => n.namespaceURI") == "http://www.w3.org/2000/svg"
    await shot(owner, "invite-link")
    invited = [e for e in await world.events() if e["kind"] == "visitor.invited"]
    assert len(invited) == 1
    assert invited[0]["body"]["by"].startswith("device:d-")
    assert invited[0]["body"]["name"] == "Maria"
    assert invited[0]["body"]["uses_total"] == 2


async def test_the_cleaner_claims_opens_inside_the_window_and_leaves(world: World) -> None:
    world.cleaner = cleaner = await Device.open(world.browser)
    page = cleaner.page
    await page.goto(world.link)
    await page.get_by_role("heading", name="Ada invites you").wait_for()
    await shot(cleaner, "visitor-offer")
    await page.get_by_role("button", name="Accept and make my key").click()
    await page.get_by_role("heading", name="Hello Maria").wait_for()
    await shot(cleaner, "visitor-home")
    assert await page.locator("#uses").text_content() == "You may open the door 2 times in all."
    # The key is in IndexedDB, as a CryptoKey that cannot be exported.
    extractable = await page.evaluate(
        """async () => {
            const conn = await new Promise((ok, no) => {
                const r = indexedDB.open("threshold-visit", 1);
                r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error);
            });
            const keys = await new Promise((ok) => {
                const r = conn.transaction("kv").objectStore("kv").get("keys");
                r.onsuccess = () => ok(r.result);
            });
            let exported = "refused";
            try { await crypto.subtle.exportKey("pkcs8", keys.privateKey); exported = "exported"; }
            catch (e) { exported = e.name; }
            return {type: keys.privateKey.type, algorithm: keys.privateKey.algorithm.name,
                    extractable: keys.privateKey.extractable, exported};
        }"""
    )
    assert extractable == {
        "type": "private",
        "algorithm": "Ed25519",
        "extractable": False,
        "exported": "InvalidAccessError",
    }
    assert world.h.sim.lock.lock_state.name == "LOCKED"
    await page.get_by_role("button", name="Open the door").click()
    await page.get_by_role("heading", name="The door is open").wait_for()
    await world.h.wait_lock(LockState.UNLOCKED)
    await shot(cleaner, "visitor-open")
    await page.get_by_role("button", name="I have left").click()
    await page.locator("#receipts li").first.wait_for()
    await world.h.wait_lock(LockState.LOCKED)
    receipt = await page.locator("#receipts li").first.text_content() or ""
    assert "in " in receipt
    assert ", out " in receipt
    kinds = [e["kind"] for e in await world.events()]
    assert "visitor.claimed" in kinds


async def test_outside_the_window_the_door_stays_locked_and_the_next_window_is_named(
    world: World,
) -> None:
    cleaner = world.cleaner
    assert cleaner is not None
    shift_gateway_clock(world, timedelta(days=1))
    try:
        await cleaner.page.get_by_role("button", name="Open the door").click()
        refusal = cleaner.page.locator(".refusal[data-code=outside_schedule]")
        await refusal.wait_for()
        text = await refusal.text_content() or ""
        assert "outside your times" in text
        # The next window is the same weekday a week after today (the gateway's evaluator).
        next_day = datetime.now(UTC) + timedelta(days=7)
        assert f"Your next time: {next_day:%A} {next_day.day} {next_day:%B}" in text
        await shot(cleaner, "visitor-outside")
    finally:
        shift_gateway_clock(world, timedelta(0))
    assert world.h.sim.lock.lock_state.name == "LOCKED"


async def test_a_second_phone_opening_the_claimed_link_is_refused(world: World) -> None:
    thief = await Device.open(world.browser)
    try:
        await thief.page.goto(world.link)
        refusal = thief.page.locator(".refusal[data-code=invitation_used]")
        await refusal.wait_for()
        assert "already accepted on another phone" in (await refusal.text_content() or "")
    finally:
        await thief.close()


async def test_the_weekly_renewal_happens_by_itself(world: World) -> None:
    cleaner = world.cleaner
    assert cleaner is not None
    before = [e for e in await world.events() if e["kind"] == "visitor.renewed"]
    # Six days on, on the phone: the ticket has a day left, so opening the page renews it.
    await cleaner.page.clock.install(time=datetime.now(UTC) + timedelta(days=6))
    await cleaner.page.goto(world.link.split("#")[0])
    await cleaner.page.get_by_role("heading", name="Hello Maria").wait_for()
    after = [e for e in await world.events() if e["kind"] == "visitor.renewed"]
    assert len(after) == len(before) + 1


async def test_the_openings_in_all_hold_across_the_renewal(world: World) -> None:
    """The second opening is on the renewed ticket; the third is refused in words: renewing
    gave no openings back (uses_total, counted by the gateway's store)."""
    cleaner = world.cleaner
    assert cleaner is not None
    page = cleaner.page
    await page.get_by_role("button", name="Open the door").click()
    await page.get_by_role("heading", name="The door is open").wait_for()
    await world.h.wait_lock(LockState.UNLOCKED)
    await page.get_by_role("button", name="I have left").click()
    await page.get_by_role("heading", name="Hello Maria").wait_for()
    await world.h.wait_lock(LockState.LOCKED)
    await page.get_by_role("button", name="Open the door").click()
    refusal = page.locator(".refusal[data-code=uses_exhausted]")
    await refusal.wait_for()
    words = await refusal.text_content() or ""
    assert "as many times as the owner allowed in all (2 times)" in words
    assert "Contact the owner" in words
    await shot(cleaner, "visitor-uses-spent")
    assert world.h.sim.lock.lock_state.name == "LOCKED"


async def test_the_owner_withdraws_the_key_and_the_cleaner_is_refused(world: World) -> None:
    owner, cleaner = world.owner, world.cleaner
    assert owner is not None
    assert cleaner is not None
    await owner.page.goto(f"{world.h.gateway.app_url}#now")
    await owner.page.get_by_role("heading", name="Now", level=1).wait_for()
    await owner.page.get_by_role("link", name="Visitors").click()
    await owner.page.locator("#invitations .badge", has_text="key in use").wait_for()
    owner.page.once("dialog", lambda dialog: dialog.accept())
    await owner.page.get_by_role("button", name="Withdraw Maria's key").click()
    await owner.page.locator("#invitations .badge", has_text="withdrawn").wait_for()
    await shot(owner, "visitors-list")
    await cleaner.page.get_by_role("button", name="Open the door").click()
    # The door's refusal (revoked), or the renewal's first when the phone's clock says the
    # ticket is due (invitation_revoked): the same words either way.
    refusal = cleaner.page.locator(
        ".refusal[data-code=revoked], .refusal[data-code=invitation_revoked]"
    )
    await refusal.wait_for()
    assert "withdrawn by the owner" in (await refusal.text_content() or "")
    await shot(cleaner, "visitor-revoked")
    assert world.h.sim.lock.lock_state.name == "LOCKED"
    assert any(e["kind"] == "visitor.revoked" for e in await world.events())

    # Every answer the page got about invitations is what /v1/openapi.json says.
    doc = (await world.h.client.call("GET", "/v1/openapi.json")).body
    seen = set()
    for response in world.answers:
        request = response.request
        path = re.sub(
            r"^/v1/app/invitations/[^/]+/revoke$",
            "/v1/app/invitations/{invitation}/revoke",
            urlsplit(response.url).path,
        )
        schema = answer_schema(doc, request.method, path, response.status)
        found = problems(await response.json(), schema, doc)
        assert found == [], (request.method, path, found)
        seen.add((request.method, path))
    assert seen >= {
        ("POST", "/v1/app/invitations/options"),
        ("POST", "/v1/app/invitations"),
        ("GET", "/v1/app/invitations"),
        ("POST", "/v1/app/invitations/{invitation}/revoke"),
    }, seen


# -- the schedule editor against the gateway's evaluator, across DST changes -------------------

DST_WEEKS = (
    ("Europe/London", datetime(2026, 3, 26, tzinfo=UTC)),  # spring forward Sun 29 March
    ("Europe/London", datetime(2026, 10, 22, tzinfo=UTC)),  # fall back Sun 25 October
    ("America/New_York", datetime(2026, 3, 5, tzinfo=UTC)),  # spring forward Sun 8 March
    ("America/New_York", datetime(2026, 10, 29, tzinfo=UTC)),  # fall back Sun 1 November
)
#: Windows over the hours that are skipped or repeated, one wrapping past midnight.
DST_SCHEDULE = [
    {"days": ["sun"], "start": "00:30", "end": "03:30"},
    {"days": ["sat"], "start": "22:00", "end": "01:30"},
    {"days": ["mon", "thu"], "start": "09:00", "end": "12:00"},
    {"days": ["sun"], "start": "01:15", "end": "01:45"},
]


async def test_a_dog_walker_opens_once_per_visit(world: World) -> None:
    """ "Door openings per visit" = 1: the walker opens once, the second press in the same
    visit is refused in words that name the next visit."""
    owner = world.owner
    assert owner is not None
    page = owner.page
    await page.goto(f"{world.h.gateway.app_url}#now")
    await page.get_by_role("heading", name="Now", level=1).wait_for()
    await page.get_by_role("link", name="Visitors").click()
    await page.get_by_role("heading", name="Visitors", level=1).wait_for()
    await page.get_by_label("Name").fill("Sam")
    await page.get_by_label("Who").select_option("dog_walker")
    today = DAYS[datetime.now(UTC).weekday()]
    for box in await page.locator("fieldset.window input[type=checkbox]").all():
        await box.set_checked(await box.get_attribute("value") == today)
    await page.locator("input[name=w0-start]").fill("00:00")
    await page.locator("input[name=w0-end]").fill("23:59")
    await page.get_by_label("Only when the camera is working").set_checked(False)
    await page.get_by_label("Door openings per visit").fill("1")
    await page.get_by_role("button", name="Invite with my passkey").click()
    link = page.locator("#invitation-link")
    await link.wait_for()
    walker = await Device.open(world.browser)
    try:
        await walker.page.goto((await link.text_content() or "").strip())
        await walker.page.get_by_role("button", name="Accept and make my key").click()
        await walker.page.get_by_role("heading", name="Hello Sam").wait_for()
        uses = await walker.page.locator("#uses").text_content()
        assert uses == "You may open the door once each visit."
        await walker.page.get_by_role("button", name="Open the door").click()
        await walker.page.get_by_role("heading", name="The door is open").wait_for()
        await world.h.wait_lock(LockState.UNLOCKED)
        await walker.page.get_by_role("button", name="I have left").click()
        await walker.page.get_by_role("heading", name="Hello Sam").wait_for()
        await world.h.wait_lock(LockState.LOCKED)
        await walker.page.get_by_role("button", name="Open the door").click()
        refusal = walker.page.locator(".refusal[data-code=uses_exhausted]")
        await refusal.wait_for()
        words = await refusal.text_content() or ""
        assert "as many times as the owner allowed for this visit (once)" in words
        assert "next visit" in words
        assert world.h.sim.lock.lock_state.name == "LOCKED"
    finally:
        await walker.close()
    invited = [e for e in await world.events() if e["kind"] == "visitor.invited"]
    assert invited[-1]["body"]["uses_per_window"] == 1


def gateway_intervals(zone: str, start: datetime, end: datetime) -> list[list[int]]:
    """The gateway's own evaluator (gateway.trust.schedule.allows), minute by minute."""
    from zoneinfo import ZoneInfo

    from gateway.trust.schedule import WeeklyWindow, allows

    windows = [WeeklyWindow.from_claim(w["days"], w["start"], w["end"]) for w in DST_SCHEDULE]
    tz = ZoneInfo(zone)
    out: list[list[int]] = []
    opened: int | None = None
    t = start
    while t < end:
        inside = allows(windows, t, tz)
        ms = int(t.timestamp() * 1000)
        if inside and opened is None:
            opened = ms
        if not inside and opened is not None:
            out.append([opened, ms])
            opened = None
        t += timedelta(minutes=1)
    if opened is not None:
        out.append([opened, int(end.timestamp() * 1000)])
    return out


async def test_the_schedule_editor_agrees_with_the_gateway_across_dst_weeks(
    world: World,
) -> None:
    from zoneinfo import ZoneInfo

    from gateway.owner.visit_terms import next_window
    from gateway.trust.schedule import WeeklyWindow

    owner = world.owner
    assert owner is not None
    windows = tuple(WeeklyWindow.from_claim(w["days"], w["start"], w["end"]) for w in DST_SCHEDULE)
    for zone, start in DST_WEEKS:
        end = start + timedelta(days=7)
        editor = await owner.page.evaluate(
            """async ([schedule, zone, from, to]) => {
                const m = await import("/app/schedule.js");
                return m.occurrences(schedule, zone, from, to);
            }""",
            [DST_SCHEDULE, zone, int(start.timestamp() * 1000), int(end.timestamp() * 1000)],
        )
        assert editor == gateway_intervals(zone, start, end), zone
        # The visitor's page's "next window" is the gateway's too: each interval's start,
        # asked a minute before it, is named as the next window.
        for a, b in editor:
            before = datetime.fromtimestamp(a / 1000, UTC) - timedelta(minutes=1)
            named = next_window(windows, before, ZoneInfo(zone))
            assert named is not None
            assert int(named[0].timestamp() * 1000) == a, (zone, before)
            if b - a < 86_400_000:
                assert int(named[1].timestamp() * 1000) == b, (zone, before)
