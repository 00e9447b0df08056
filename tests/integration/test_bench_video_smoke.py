"""bench/video.py runs end to end (briefly, at a small size) and prints one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.rtsp import require_rtsp_server

BENCH = Path(__file__).resolve().parents[2] / "bench" / "video.py"


@pytest.mark.rtsp
def test_bench_prints_one_json_line_with_every_figure() -> None:
    require_rtsp_server()
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--seconds",
            "4",
            "--repeat",
            "2",
            "--width",
            "320",
            "--height",
            "240",
            "--grants",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    for key in (
        "recorder_cpu_s_per_min",
        "ffmpeg_copy_cpu_s_per_min",
        "recorder_vs_ffmpeg",
        "with_motion_cpu_s_per_min",
        "peak_rss_mb",
        "stall_detect_s",
        "reconnect_s",
        "clip_ready_ms",
        "cameras_4_cpu_pct",
        "cameras_4_fps",
        "grant_p50_ms_no_cameras",
        "grant_p50_ms_4cams",
        "grant_p99_ratio_4cams",
    ):
        assert isinstance(figures[key], (int, float)), key
        assert figures[key] >= 0, key
    assert figures["stall_detect_s"] <= 2 * figures["read_timeout_s"] + 0.5
    assert len(figures["recorder_vs_ffmpeg_runs"]) == 2
    assert figures["recorder_vs_ffmpeg"] in figures["recorder_vs_ffmpeg_runs"]
