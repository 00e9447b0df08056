"""Several cameras, and camera settings, through the running gateway's configuration.

Real components throughout: Debian's GStreamer RTSP servers as the cameras, HTTPS on
loopback, the virtual Nuki lock over bleak and Bumble, SQLite. Waits are on events and
packet arrivals, each bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.clients.lan import ApiProblem, KeyPin
from gateway.owner.history import Filters
from gateway.trust.ticket import Camera as TicketCamera
from tests.integration.test_metrics import scrape, value
from tests.support.rtsp import RtspServerFactory, RtspTestServer, rtsp_server_factory, until
from tests.support.service import GatewayHarness, running_harness

__all__ = ["rtsp_server_factory"]  # a fixture, imported for pytest

pytestmark = pytest.mark.rtsp

WAIT = 15.0


def several_cameras(tables: list[dict[str, Any]]) -> Any:
    """A config edit: the template's one [camera] table becomes these [[camera]] tables."""

    def edit(path: Path) -> None:
        text = path.read_text()
        text = re.sub(r"\n\[camera\]\n(?:(?!\n\[).)*", "\n", text, flags=re.S)
        for table in tables:
            text += "\n[[camera]]\n" + "".join(
                f"{key} = {json.dumps(value)}\n" for key, value in table.items()
            )
        path.write_text(text)

    return edit


def camera_table(name: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "url": url,
        "doors": ["front"],
        "read_timeout_s": 1,
        "preroll_s": 1,
        "post_roll_s": 0.5,
        "motion": False,
    }


async def events(h: GatewayHarness) -> list[dict[str, Any]]:
    reply = await h.client.owner(h.keys.owner, "GET", "/v1/owner/events?limit=1000")
    return list(reply["events"])


async def test_two_cameras_on_one_door_both_film_and_both_are_required(
    rtsp_server_factory: RtspServerFactory, tmp_path: Path
) -> None:
    porch = rtsp_server_factory()
    hall = rtsp_server_factory(width=160, height=120)
    edit = several_cameras([camera_table("porch", porch.url), camera_table("hall", hall.url)])
    async with running_harness(tmp_path / "gw", configure=edit, allow_without_camera=False) as h:
        cameras = h.gateway.camera
        assert cameras is not None
        assert [c.name for c in cameras.cameras] == ["porch", "hall"]
        for entry in cameras.cameras:
            assert await entry.camera.wait_live(WAIT)
            source = entry.camera.source
            await until(source, lambda source=source: bool(source.latest_group()), WAIT)

        t = h.ticket(camera=TicketCamera.REQUIRED)
        opened = (await h.open(t, package_code="PKG-1")).body
        session = opened["session"]
        await h.done(t, session)
        await cameras.settle(WAIT)
        log = await events(h)
        granted = next(
            e["body"]
            for e in log
            if e["kind"] == "session.granted" and e["body"]["session"] == session
        )
        assert granted["scene_camera_live"] is True
        assert granted["scene_cameras"] == "porch,hall"
        clips = {
            e["body"]["camera"]: e["body"]
            for e in log
            if e["kind"] == "clip.recorded" and e["body"]["session_id"] == session
        }
        assert set(clips) == {"porch", "hall"}
        for clip in clips.values():
            data = await asyncio.to_thread(Path(clip["path"]).read_bytes)
            assert hashlib.sha256(data).hexdigest() == clip["sha256"]
        assert Path(clips["porch"]["path"]).parent != Path(clips["hall"]["path"]).parent
        # The owner app serves every camera's clips (each camera has its own directory), and
        # lists the cameras for its live view.
        app = h.gateway.owner_app
        assert app is not None
        for e in log:
            if e["kind"] == "clip.recorded" and e["body"]["session_id"] == session:
                path, media_type = await app.media(e["index"])
                assert (str(path), media_type) == (e["body"]["path"], "video/mp4")
        now = await app.now()
        assert [c["name"] for c in now["cameras"]] == ["porch", "hall"]

        # The owner's app lists the cameras and picks one; an unknown name is a problem (which
        # quotes nothing the client sent), not the default camera.
        listed = await h.client.owner(h.keys.owner, "GET", "/v1/owner/cameras")
        assert listed["cameras"] == [
            {"name": "porch", "doors": ["front"], "live": True},
            {"name": "hall", "doors": ["front"], "live": True},
        ]
        await owner_snapshot(h, "?camera=hall", 200)
        await owner_snapshot(h, "?camera=attic", 404, "unknown_camera")
        await owner_snapshot(h, "?camera=%3Cscript%3E", 400, "bad_request")

        # The owner's web app shows both cameras and the doors they watch, and both clips of
        # the visit, each from its own camera's directory, verified and playable.
        app = h.gateway.owner_app
        assert app is not None
        now = await app.now()
        assert [(c["name"], c["doors"], c["live"]) for c in now["cameras"]] == [
            ("porch", ["front"], True),
            ("hall", ["front"], True),
        ]
        history = await app.history(Filters())
        (card,) = [c for c in history["visits"] if c["session"] == session]
        assert sorted(clip["status"] for clip in card["clips"]) == ["verified", "verified"]
        for clip in card["clips"]:
            path, media_type = await app.media(clip["entry"])
            assert media_type == "video/mp4"
            assert path.is_file()

        # One of the door's cameras frozen: a ticket that requires the camera is refused.
        hall.freeze()
        async with asyncio.timeout(WAIT):
            await cameras.by_name("hall").camera.stalled.wait()  # type: ignore[union-attr]
        assert cameras.live("front") is False
        # The operator's metrics name the camera that is down.
        assert h.gateway.metrics_url is not None
        scraped = await scrape(h.gateway.metrics_url)
        assert value(scraped, "threshold_camera_configured") == 2
        assert value(scraped, "threshold_camera_live", camera="porch") == 1
        assert value(scraped, "threshold_camera_live", camera="hall") == 0
        assert value(scraped, "threshold_camera_fps", camera="porch") > 0
        with pytest.raises(ApiProblem) as refused:
            await h.open(h.ticket(camera=TicketCamera.REQUIRED), package_code="PKG-1")
        assert refused.value.code == "camera_unavailable"
        hall.thaw()


async def owner_snapshot(h: GatewayHarness, query: str, status: int, code: str = "") -> None:
    path = "/v1/owner/camera/snapshot" + query
    headers = await h.client.owner_headers(h.keys.owner, "GET", path, b"")
    ssl = KeyPin(h.gateway.fingerprint)
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl), timeout=aiohttp.ClientTimeout(total=WAIT)
        ) as http,
        http.get(h.url + path, headers=headers) as resp,
    ):
        assert resp.status == status, await resp.text()
        if status == 200:
            assert (await resp.read())[:2] == b"\xff\xd8"
        else:
            problem = await resp.json(content_type=None)
            assert problem["code"] == code
            assert query.removeprefix("?camera=") not in problem["detail"]


async def test_a_udp_only_camera_works_through_the_gateways_config(
    rtsp_server_factory: RtspServerFactory, tmp_path: Path
) -> None:
    server: RtspTestServer = rtsp_server_factory()
    server.args.append("--udp-only")
    server.restart()
    settings = {
        ("camera", "url"): json.dumps(server.url),
        ("camera", "transport"): '"udp"',
        ("camera", "read_timeout_s"): "1",
    }
    async with running_harness(tmp_path / "gw", settings=settings) as h:
        assert h.gateway.camera is not None
        assert h.gateway.camera.camera.config.transport == "udp"
        assert await h.gateway.camera.camera.wait_live(WAIT)
        listed = await h.client.owner(h.keys.owner, "GET", "/v1/owner/cameras")
        assert listed["cameras"] == [{"name": "camera", "doors": ["front"], "live": True}]
