"""The camera inside the running gateway, against the REAL GStreamer RTSP server.

Everything is real: HTTPS on loopback, the virtual Nuki lock through bleak over Bumble,
SQLite, PyAV reading RTSP from Debian's GStreamer server (tests/support/rtsp.py). Waits
synchronise on events (session transitions, the camera's stall event, the clips in flight)
and each has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ble.driver import LockState
from gateway.clients.lan import ApiProblem, KeyPin
from gateway.trust.base64url import b64u_encode
from gateway.trust.owner_request import OwnerAudience, sign_request
from gateway.trust.ticket import Camera as TicketCamera
from tests.support.rtsp import RtspTestServer, rtsp_server, rtsp_server_factory, until
from tests.support.service import GATEWAY_ID, GatewayHarness, running_harness
from video.liveview import BOUNDARY

__all__ = ["rtsp_server", "rtsp_server_factory"]  # fixtures, imported for pytest

pytestmark = pytest.mark.rtsp

WAIT = 15.0
READ_TIMEOUT_S = 1.0


def camera_settings(url: str) -> dict[tuple[str, str], str]:
    return {
        ("camera", "url"): json.dumps(url),
        ("camera", "read_timeout_s"): str(READ_TIMEOUT_S),
        ("camera", "preroll_s"): "2",
        ("camera", "post_roll_s"): "0.5",
    }


async def events(h: GatewayHarness) -> list[dict[str, Any]]:
    reply = await h.client.owner(h.keys.owner, "GET", "/v1/owner/events?limit=1000")
    return list(reply["events"])


def of_session(entries: list[dict[str, Any]], session: str) -> list[dict[str, Any]]:
    return [
        e
        for e in entries
        if e["body"].get("session") == session or e["body"].get("session_id") == session
    ]


def one(entries: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [e for e in entries if e["kind"] == kind]
    assert len(found) == 1, (kind, [e["kind"] for e in entries])
    return found[0]


def rfc3339_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def session_kinds(database: Path, session: str) -> list[str]:
    """The kinds of a session's entries, read from the database file after the gateway quit."""
    from store import audit_log
    from store.verify import open_read_only

    conn = open_read_only(str(database))
    try:
        return [
            s.entry.kind
            for s in audit_log.iter_entries(conn, 0)
            if session in (s.entry.body.get("session"), s.entry.body.get("session_id"))
        ]
    finally:
        conn.close()


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def exists(path: Path) -> bool:
    return path.exists()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
async def camera_harness(
    tmp_path: Path, rtsp_server: RtspTestServer
) -> AsyncIterator[GatewayHarness]:
    async with running_harness(
        tmp_path / "gw", settings=camera_settings(rtsp_server.url), allow_without_camera=False
    ) as h:
        assert h.gateway.camera is not None
        assert await h.gateway.camera.camera.wait_live(WAIT), "the test camera never went live"
        source = h.gateway.camera.camera.source
        # Visitors arrive once the camera has run a while: the ring holds a pre-roll.
        await until(source, lambda: source.ring_stats().span_s >= 1.0, WAIT)
        yield h


async def test_a_session_is_filmed_from_before_the_unlock_with_a_matching_hash(
    camera_harness: GatewayHarness,
) -> None:
    h = camera_harness
    assert h.gateway.camera is not None
    assert h.gateway.store is not None
    t = h.ticket(camera=TicketCamera.REQUIRED)
    opened = (await h.open(t, package_code="PKG-1")).body
    session = opened["session"]
    assert opened["state"] == "open"
    # The grant's picture, taken at the grant, is decoded and saved once the unlock is over,
    # while the visit goes on (the door has not opened, the session has not ended).
    await h.gateway.camera.settle(WAIT)
    during = of_session(await events(h), session)
    assert [e["body"]["moment"] for e in during if e["kind"] == "snapshot.saved"] == ["grant"]
    closed = await h.done(t, session)
    assert closed["state"] == "closed"
    await h.gateway.camera.settle(WAIT)

    log = of_session(await events(h), session)
    clip = one(log, "clip.recorded")["body"]
    path = Path(clip["path"])
    assert sha256_of(path) == clip["sha256"]
    assert clip["frame_count"] > 0
    assert clip["duration_ms"] > 0
    assert clip["camera_live_at_grant"] is True
    # Recording began before the unlock was even written, and covers the pre-roll.
    unlocking = one(log, "session.unlocking")
    assert rfc3339_ms(clip["started_at"]) <= unlocking["time_ms"]
    assert clip["preroll_ms"] > 0
    # The clips index holds it, keyed by its audit entry.
    index = one(log, "clip.recorded")["index"]
    rows = await h.gateway.store.clips_for(index)
    assert [(r.path, r.sha256.hex()) for r in rows] == [(str(path), clip["sha256"])]

    # Motion facts ride with the grant and the relock.
    granted = one(log, "session.granted")["body"]
    assert granted["scene_motion"] in ("seen", "none")
    assert isinstance(granted["scene_someone_at_door"], bool)
    closed_entry = one(log, "session.closed")["body"]
    assert isinstance(closed_entry["scene_quiet"], bool)

    # Snapshots at the grant and at the close, each file matching its entry.
    snaps = {e["body"]["moment"]: e["body"] for e in log if e["kind"] == "snapshot.saved"}
    assert {"grant", "close"} <= set(snaps), [e["kind"] for e in log]
    for snap in snaps.values():
        data = read_bytes(Path(snap["path"]))
        assert data[:2] == b"\xff\xd8"
        assert hashlib.sha256(data).hexdigest() == snap["sha256"]


async def test_camera_required_is_granted_live_and_denied_once_the_camera_froze(
    camera_harness: GatewayHarness, rtsp_server: RtspTestServer
) -> None:
    h = camera_harness
    assert h.gateway.camera is not None
    camera = h.gateway.camera.camera
    live = h.ticket(camera=TicketCamera.REQUIRED)
    opened = (await h.open(live, package_code="PKG-1")).body
    assert opened["state"] == "open"
    await h.done(live, opened["session"])

    rtsp_server.freeze()
    try:
        await asyncio.wait_for(camera.stalled.wait(), READ_TIMEOUT_S * 2 + WAIT)
        assert not camera.live
        t = h.ticket(camera=TicketCamera.REQUIRED)
        with pytest.raises(ApiProblem) as refused:
            await h.open(t, package_code="PKG-1")
        assert (refused.value.status, refused.value.code) == (403, "camera_unavailable")
        # A ticket that only prefers the camera goes on, and says the clip is missing.
        preferred = h.ticket(camera=TicketCamera.PREFERRED)
        view = (await h.open(preferred, package_code="PKG-1")).body
        assert view["state"] == "open"
        await h.done(preferred, view["session"])
        await h.gateway.camera.settle(WAIT)
        log = await events(h)
        assert any(e["kind"] == "camera.stalled" for e in log)
        denied = [e for e in log if e["kind"] == "session.denied"]
        assert denied[-1]["body"]["code"] == "camera_unavailable"
        entries = of_session(log, view["session"])
        # The grant itself says the camera was down (write-ahead, with the grant).
        assert one(entries, "session.granted")["body"]["scene_camera_live"] is False
        # The clip holds at most the frames from before the freeze (the pre-roll ring), and
        # says the camera was not live; with nothing at all it would be clip.missing.
        clip = [e["body"] for e in entries if e["kind"] in ("clip.recorded", "clip.missing")]
        assert len(clip) == 1
        assert clip[0]["camera_live_at_grant"] is False
        failed = {e["body"]["moment"] for e in entries if e["kind"] == "snapshot.failed"}
        assert {"grant", "close"} <= failed
    finally:
        rtsp_server.thaw()


async def test_a_camera_frozen_mid_session_relocks_early_and_raises_an_alarm(
    camera_harness: GatewayHarness, rtsp_server: RtspTestServer
) -> None:
    h = camera_harness
    assert h.gateway.camera is not None
    t = h.ticket(camera=TicketCamera.REQUIRED, open_s=600)
    opened = (await h.open(t, package_code="PKG-1")).body
    session = opened["session"]
    assert opened["state"] == "open"
    started = time.monotonic()
    rtsp_server.freeze()
    try:
        # open_s is ten minutes: only the stall can close the session within the wait.
        await h.wait_session(session, "closed", READ_TIMEOUT_S * 2 + WAIT)
        await h.wait_lock(LockState.LOCKED)
        assert time.monotonic() - started < READ_TIMEOUT_S * 2 + WAIT
        await h.gateway.camera.settle(WAIT)
        log = of_session(await events(h), session)
        kinds = [e["kind"] for e in log]
        relocking = one(log, "session.relocking")["body"]
        assert relocking["cause"] == "camera_stalled"
        assert one(log, "camera.stalled")["body"]["action"] == "relock_early"
        assert one(log, "alarm.raised")["body"]["reason"] == "camera_stalled"
        # All three are in the log before the relock's result.
        assert kinds.index("alarm.raised") < kinds.index("session.closed")
        # What was filmed before the freeze is kept and recorded.
        assert "clip.recorded" in kinds, json.dumps(log, indent=1)
        clip = one(log, "clip.recorded")["body"]
        assert sha256_of(Path(clip["path"])) == clip["sha256"]
    finally:
        rtsp_server.thaw()


async def test_live_view_and_snapshot_are_for_the_owner_only(
    camera_harness: GatewayHarness,
) -> None:
    h = camera_harness
    courier = h.ticket()
    url = h.url
    ssl = KeyPin(h.gateway.fingerprint)
    audience = OwnerAudience(GATEWAY_ID, h.gateway.fingerprint)
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl), timeout=timeout
    ) as http:

        def signed(key: Any, path: str) -> dict[str, str]:
            nonce = b64u_encode(secrets.token_bytes(24))
            return sign_request(key, audience, "GET", path, b"", int(time.time()), nonce)

        for path in ("/v1/owner/camera/live", "/v1/owner/camera/snapshot"):
            for headers in (
                {},
                {"Authorization": f"Bearer {courier.token}"},
                signed(courier.holder, path),
            ):
                async with http.get(url + path, headers=headers) as resp:
                    body = await resp.json(content_type=None)
                    assert (resp.status, body["code"]) == (401, "unauthorized"), (path, headers)

        path = "/v1/owner/camera/snapshot"
        async with http.get(url + path, headers=signed(h.keys.owner, path)) as resp:
            assert resp.status == 200
            assert resp.content_type == "image/jpeg"
            assert (await resp.read())[:2] == b"\xff\xd8"

        path = "/v1/owner/camera/live"
        async with http.get(url + path, headers=signed(h.keys.owner, path)) as resp:
            assert resp.status == 200
            assert resp.content_type == "multipart/x-mixed-replace"
            seen = b""
            while b"\xff\xd9" not in seen:  # one whole JPEG part
                chunk = await resp.content.readany()
                assert chunk, "the live view ended before one picture"
                seen += chunk
            assert seen.startswith(f"--{BOUNDARY}".encode())
            assert b"\xff\xd8" in seen
            # A third viewer while two watch: live_view_busy.
            async with (
                http.get(url + path, headers=signed(h.keys.owner, path)) as second,
                http.get(url + path, headers=signed(h.keys.owner, path)) as third,
            ):
                assert second.status == 200
                problem = await third.json(content_type=None)
                assert (third.status, problem["code"]) == (429, "live_view_busy")

    # Every look into the home is in the household's log: the snapshot, and each viewing
    # from its start to its end (written when the server sees the viewer leave).
    async with asyncio.timeout(WAIT):
        while True:
            log = await events(h)
            kinds = [e["kind"] for e in log]
            if kinds.count("camera.live_view_ended") == 2:
                break
            await asyncio.sleep(0.05)  # polling the log, bounded by the timeout above
    assert kinds.count("camera.snapshot_viewed") == 1
    assert kinds.count("camera.live_view_started") == 2  # the refused third is not a viewing
    ends = [e["body"] for e in log if e["kind"] == "camera.live_view_ended"]
    assert max(end["frames"] for end in ends) >= 1  # the first viewer saw a whole picture
    assert all(end["duration_ms"] >= 0 for end in ends)


async def test_live_view_without_a_camera_is_a_problem(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "gw") as h:
        for path in ("/v1/owner/camera/live", "/v1/owner/camera/snapshot"):
            reply = await h.client.request(
                "GET", path, headers=await h.client.owner_headers(h.keys.owner, "GET", path, b"")
            )
            assert (reply.status, reply.body["code"]) == (503, "camera_unavailable")


@contextlib.asynccontextmanager
async def file_camera_gateway(tmp_path: Path, budget_mb: int) -> AsyncIterator[GatewayHarness]:
    """A running gateway filming a generated test video, its clips within ``budget_mb``."""
    from video.testvideo import generate_test_video

    video = generate_test_video(tmp_path / "cam.mp4", seconds=2.0)
    settings = camera_settings(str(video))
    settings[("camera", "clip_budget_mb")] = str(budget_mb)
    async with running_harness(tmp_path / "gw", settings=settings) as h:
        assert h.gateway.camera is not None
        assert h.gateway.store is not None
        assert await h.gateway.camera.camera.wait_live(WAIT)
        yield h


async def filmed_visit(h: GatewayHarness) -> str:
    """A courier in and out; returns the session once its clip and snapshots are recorded."""
    assert h.gateway.camera is not None
    t = h.ticket(camera=TicketCamera.REQUIRED)
    view = (await h.open(t, package_code="PKG-1")).body
    await h.done(t, view["session"])
    await h.gateway.camera.settle(WAIT)
    return str(view["session"])


async def test_the_file_camera_films_entries_and_retention_is_audited(tmp_path: Path) -> None:
    async with file_camera_gateway(tmp_path, budget_mb=1) as h:
        assert h.gateway.camera is not None
        # Fill the clip directory past its 1 MB budget with an old clip: it goes first.
        clips = h.gateway.camera.camera.config.clip_dir
        old = clips / "20000101T000000Z-old.mp4"
        write_bytes(old, b"\0" * (2 * 1024 * 1024))
        session = await filmed_visit(h)
        log = await events(h)
        clip = one(of_session(log, session), "clip.recorded")["body"]
        assert sha256_of(Path(clip["path"])) == clip["sha256"]
        deleted = one(log, "clip.deleted")["body"]
        assert deleted["path"] == str(old)
        assert not exists(old)


async def test_a_clip_deleted_by_retention_leaves_the_index_with_its_snapshots(
    tmp_path: Path,
) -> None:
    async with file_camera_gateway(tmp_path, budget_mb=1) as h:
        assert h.gateway.camera is not None
        assert h.gateway.store is not None
        session = await filmed_visit(h)
        log = of_session(await events(h), session)
        recorded = one(log, "clip.recorded")
        snapshots = [e["body"]["path"] for e in log if e["kind"] == "snapshot.saved"]
        assert snapshots
        assert await h.gateway.store.clips_for(recorded["index"])
        # Age the first visit's media and fill the budget with a newer file: the next
        # visit's retention pass must remove the first visit's clip AND its snapshots.
        for path in [recorded["body"]["path"], *snapshots]:
            await asyncio.to_thread(os.utime, path, (1_000_000, 1_000_000))
        clips = h.gateway.camera.camera.config.clip_dir
        write_bytes(clips / "20990101T000000Z-filler.mp4", b"\0" * (1024 * 1024))
        await filmed_visit(h)
        deleted = {
            e["body"]["path"]: e["body"] for e in await events(h) if e["kind"] == "clip.deleted"
        }
        clip_gone = deleted[recorded["body"]["path"]]
        assert clip_gone["media"] == "clip"
        assert clip_gone["recorded_entry"] == recorded["index"]
        for path in snapshots:
            assert deleted[path]["media"] == "snapshot"
            assert deleted[path]["recorded_entry"] is None
            assert not exists(Path(path))
        assert not exists(Path(recorded["body"]["path"]))
        assert await h.gateway.store.clips_for(recorded["index"]) == []


async def test_shutdown_with_a_frozen_camera_and_an_open_door_stays_within_budget(
    camera_harness: GatewayHarness, rtsp_server: RtspTestServer
) -> None:
    h = camera_harness
    assert h.gateway.store is not None
    t = h.ticket(camera=TicketCamera.REQUIRED, open_s=600)
    opened = (await h.open(t, package_code="PKG-1")).body
    assert opened["state"] == "open"
    rtsp_server.freeze()
    try:
        started = time.monotonic()
        # threshold run gives stop() 4.5 s; a reader blocked on the frozen camera must not
        # hold it (the door relocks, the clip in flight is cut short and recorded).
        await h.gateway.stop()
        assert time.monotonic() - started < 4.5
        await h.wait_lock(LockState.LOCKED)
        kinds = await asyncio.to_thread(session_kinds, h.gateway.config.database, opened["session"])
        assert "session.closed" in kinds
        assert "clip.recorded" in kinds or "clip.missing" in kinds, kinds
    finally:
        rtsp_server.thaw()


async def test_a_stall_during_the_unlock_relocks_as_soon_as_the_door_is_open(
    camera_harness: GatewayHarness,
) -> None:
    h = camera_harness
    service = h.gateway.service
    assert service is not None
    h.sim.lock.motor_seconds = 0.5  # a slow bolt: the stall lands while it turns
    t = h.ticket(camera=TicketCamera.REQUIRED, open_s=600)
    request = asyncio.ensure_future(h.open(t, package_code="PKG-1"))
    try:

        def unlocking() -> bool:
            return any(view.state == "unlocking" for view in service.sessions())

        await service.wait_for(unlocking, WAIT)
        # The hook the camera's stall listener calls (that path: the SIGSTOP tests above).
        assert service.camera_stalled() == 1
        session = (await asyncio.wait_for(request, WAIT)).body["session"]
    finally:
        if not request.done():
            request.cancel()
    await h.wait_session(session, "closed", WAIT)
    log = of_session(await events(h), session)
    assert one(log, "session.relocking")["body"]["cause"] == "camera_stalled"
    assert one(log, "alarm.raised")["body"]["reason"] == "camera_stalled"
