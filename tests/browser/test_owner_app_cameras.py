"""The owner app's live view with two cameras (issue 14): in a real Chromium against a real
gateway over HTTPS on loopback, the "Now" screen lists both cameras and the live view
switches between them; each viewing is audited under the camera's name.

The two cameras are video files played in a loop, of different sizes, so the picture shown
tells which camera streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.integration.test_gateway_cameras import camera_table, several_cameras
from tests.support.browser import Device, launch
from tests.support.service import GatewayHarness, running_harness
from video.testvideo import generate_test_video

pytestmark = pytest.mark.asyncio(loop_scope="module")

SIZES = {"porch": (320, 240), "hall": (192, 144)}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def two_cameras(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[GatewayHarness, Any]]:
    root = tmp_path_factory.mktemp("owner-app-cameras")
    tables = []
    for name, (width, height) in SIZES.items():
        video = generate_test_video(root / f"{name}.mp4", seconds=3.0, width=width, height=height)
        tables.append(camera_table(name, str(video)))
    async with (
        running_harness(root / "gw", configure=several_cameras(tables)) as h,
        launch(h.gateway.config.api.tls_cert) as browser,
    ):
        yield h, browser


async def shown_width(device: Device, camera: str) -> int:
    """The width of ``camera``'s live picture, once its screen is up and a picture arrived."""
    handle = await device.page.wait_for_function(
        """(alt) => { const i = document.getElementById('live-view');
            return i && i.alt === alt && i.naturalWidth > 0 ? i.naturalWidth : null; }""",
        arg=f"The {camera} camera, live",
    )
    return int(await handle.json_value())


async def test_the_live_view_switches_between_two_cameras(
    two_cameras: tuple[GatewayHarness, Any],
) -> None:
    h, browser = two_cameras
    assert h.gateway.camera is not None
    for entry in h.gateway.camera.cameras:
        assert await entry.camera.wait_live(15)
    made = await h.client.owner(
        h.keys.owner,
        "POST",
        "/v1/owner/enrollments",
        {"role": "owner", "name": "Ada's phone"},
        expect=(201,),
    )
    owner = await Device.open(browser)
    page = owner.page
    assert h.gateway.app_url is not None
    await page.goto(str(made["link"]))
    await page.get_by_role("button", name="Create a passkey").click()
    await page.get_by_role("heading", name="Now", level=1).wait_for()

    # "Now" lists both cameras, each a way into its live view.
    cameras = page.locator("#cameras li")
    await cameras.first.wait_for()
    assert [await c.get_attribute("data-camera") for c in await cameras.all()] == ["porch", "hall"]

    # The first camera by default; each camera's link shows that camera's picture.
    await page.goto(h.gateway.app_url + "#live")
    assert await shown_width(owner, "door") == SIZES["porch"][0]  # unnamed: the first camera
    await page.goto(h.gateway.app_url + "#now")
    await page.get_by_role("link", name="Watch hall live").click()
    await page.wait_for_function("() => location.hash === '#live/hall'")
    assert await shown_width(owner, "hall") == SIZES["hall"][0]
    await page.goto(h.gateway.app_url + "#now")  # ends the stream

    reply = await h.client.owner(h.keys.owner, "GET", "/v1/owner/events?limit=1000")
    started = [
        e["body"]["camera"] for e in reply["events"] if e["kind"] == "camera.live_view_started"
    ]
    assert started[-2:] == ["porch", "hall"]
