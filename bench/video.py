"""Camera benchmark: the cost of our reader and recorder against ``ffmpeg -c copy``.

Prints ONE JSON line, measured in one run on a 1080p 15 fps stream from the project's
GStreamer test camera (tests/support/rtsp_server.py, snow pattern at 4 Mb/s so the encoder
really fills the bitrate, like a real camera):

* recorder_cpu_s_per_min: CPU seconds per minute of our reader thread plus one clip being
  remuxed (no decoding), measured in this process;
* ffmpeg_copy_cpu_s_per_min: Debian's ``ffmpeg -rtsp_transport tcp -i URL -c copy -f mp4``
  on the same stream at the same time (the reference, from wait4's rusage; run side by
  side so that both see the same load on a shared machine; both include connecting);
* recorder_vs_ffmpeg: their ratio (target <= 1.0);
* with_motion_cpu_s_per_min: the same with motion detection on (target < 6, i.e. 10% of a
  core);
* peak_rss_mb: this process's peak resident memory;
* stall_detect_s: from SIGSTOP of the server (after 3 s of steady streaming) to the camera's
  stall event (target <= 2 x read_timeout_s);
* reconnect_s: from the server being back (after SIGKILL) to the camera being live again;
* clip_ready_ms: from the end of the post-roll to the clip's result (closed and hashed).

Usage: .venv/bin/python bench/video.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.rtsp import RtspTestServer
from video.camera import Camera, CameraConfig
from video.motion import MotionConfig

READ_TIMEOUT_S = 2.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def recorder_cpu(url: str, seconds: float, clips: Path, motion: bool) -> tuple[float, float]:
    """CPU seconds per minute of the camera recording one clip for ``seconds``; clip_ready_ms."""
    config = CameraConfig(
        url=url,
        clip_dir=clips,
        read_timeout_s=READ_TIMEOUT_S,
        motion=MotionConfig() if motion else None,
        post_roll_s=0.0,
    )
    before = cpu_s()
    started = time.monotonic()
    async with Camera(config) as camera:
        if not await camera.wait_live(20):
            raise SystemExit("bench: the test camera never went live")
        recording = await camera.start_clip("bench")
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
        finish_at = time.monotonic()
        result = await camera.finish_clip(recording, post_roll_s=0.0)
        ready_ms = (time.monotonic() - finish_at) * 1000
        elapsed = time.monotonic() - started
        used = cpu_s() - before
    if result.frame_count < seconds * 10:
        raise SystemExit(f"bench: the clip has only {result.frame_count} frames")
    return used * 60 / elapsed, ready_ms


def start_ffmpeg(url: str, out: Path) -> subprocess.Popen[bytes]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("bench: ffmpeg is missing (sudo apt-get install ffmpeg)")
    return subprocess.Popen(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url,
         "-c", "copy", "-f", "mp4", "-y", str(out)],
        stdin=subprocess.DEVNULL,
    )


def stop_ffmpeg(process: subprocess.Popen[bytes], started: float, out: Path) -> float:
    """CPU seconds per minute of the ffmpeg process, from its rusage at exit."""
    process.send_signal(signal.SIGINT)  # ffmpeg finishes the file and exits cleanly
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    if not out.exists() or out.stat().st_size == 0:
        raise SystemExit("bench: ffmpeg wrote nothing")
    return (usage.ru_utime + usage.ru_stime) * 60 / elapsed


async def side_by_side(url: str, seconds: float, work: Path) -> tuple[float, float, float]:
    """Our recorder and ffmpeg on the same stream at the same time, so both see the same
    machine load: (recorder, ffmpeg) CPU s/min and clip_ready_ms."""
    out = work / "ffmpeg.mp4"
    started = time.monotonic()
    process = start_ffmpeg(url, out)
    try:
        recorder, ready_ms = await recorder_cpu(url, seconds, work / "clips", motion=False)
    finally:
        ffmpeg = stop_ffmpeg(process, started, out)
    return recorder, ffmpeg, ready_ms


async def stall_and_reconnect(server: RtspTestServer, clips: Path) -> tuple[float, float]:
    config = CameraConfig(url=server.url, clip_dir=clips, read_timeout_s=READ_TIMEOUT_S,
                          motion=None)
    async with Camera(config) as camera:
        if not await camera.wait_live(20):
            raise SystemExit("bench: the test camera never went live")
        # Steady state first: right after connecting, the first seconds arrive in a burst.
        await asyncio.sleep(3.0)
        server.freeze()
        frozen = time.monotonic()
        async with asyncio.timeout(30):
            await camera.stalled.wait()
        stall_s = time.monotonic() - frozen
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)
        back = time.monotonic()
        if not await camera.wait_live(90):
            raise SystemExit("bench: no reconnect")
        reconnect_s = time.monotonic() - back
    return stall_s, reconnect_s


def main() -> int:
    parser = argparse.ArgumentParser(description="camera benchmark (one JSON line)")
    parser.add_argument("--seconds", type=float, default=30.0, help="per measurement (30)")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    args = parser.parse_args()
    server = RtspTestServer(
        width=args.width, height=args.height, fps=15, bitrate_kbps=4000, keyint=15,
        pattern="snow",
    )
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            recorder, ffmpeg, ready_ms = asyncio.run(side_by_side(server.url, args.seconds, work))
            with_motion, _ = asyncio.run(
                recorder_cpu(server.url, args.seconds, work / "clips", motion=True)
            )
            stall_s, reconnect_s = asyncio.run(stall_and_reconnect(server, work / "clips"))
    finally:
        server.stop()
    print(json.dumps({
        "stream": f"{args.width}x{args.height}@15fps 4Mb/s h264, {args.seconds:g} s each",
        "recorder_cpu_s_per_min": round(recorder, 3),
        "ffmpeg_copy_cpu_s_per_min": round(ffmpeg, 3),
        "recorder_vs_ffmpeg": round(recorder / ffmpeg, 3) if ffmpeg else None,
        "with_motion_cpu_s_per_min": round(with_motion, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "stall_detect_s": round(stall_s, 3),
        "read_timeout_s": READ_TIMEOUT_S,
        "reconnect_s": round(reconnect_s, 3),
        "clip_ready_ms": round(ready_ms, 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
