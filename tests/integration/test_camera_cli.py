"""``threshold camera check``: a real RTSP camera, a file, and a camera that is not there."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.support.cli import run_cli as run
from tests.support.rtsp import RtspTestServer, rtsp_server, rtsp_server_factory
from video.testvideo import generate_test_video

__all__ = ["rtsp_server", "rtsp_server_factory"]


@pytest.mark.rtsp
def test_check_reports_the_stream_and_saves_a_snapshot(
    rtsp_server: RtspTestServer, tmp_path: Path
) -> None:
    snapshot = tmp_path / "snap.jpg"
    result = run("camera", "check", rtsp_server.url, "--snapshot", str(snapshot), "--within", "10")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["codec"] == "h264"
    assert (report["width"], report["height"]) == (320, 240)
    assert report["fps"] == pytest.approx(15, rel=0.2)
    assert report["keyframe_interval_s"] == pytest.approx(1.0, abs=0.1)
    assert 0 < report["time_to_first_frame_s"] < 10
    assert snapshot.read_bytes()[:2] == b"\xff\xd8"


def test_check_works_on_a_video_file(tmp_path: Path) -> None:
    video = generate_test_video(tmp_path / "v.mp4", seconds=3.0, fps=10, keyframe_interval=10)
    result = run("camera", "check", str(video), "--snapshot", str(tmp_path / "s.jpg"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["keyframe_interval_s"] == pytest.approx(1.0, abs=0.05)


def test_a_camera_that_is_not_there_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(
        "camera",
        "check",
        f"rtsp://user:secret@127.0.0.1:{port}/cam",
        "--within",
        "2",
        "--snapshot",
        str(tmp_path / "s.jpg"),
    )
    assert result.returncode == 1
    assert "camera_unavailable" in result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s.jpg").exists()


def test_bad_options_are_usage_errors() -> None:
    result = run("camera", "check", "rtsp://127.0.0.1:1/cam", "--within", "-1")
    assert result.returncode == 2
