"""Camera benchmark: the cost of our reader and recorder against ``ffmpeg -c copy``.

Prints ONE JSON line, measured in one run on a 1080p 15 fps stream from the project's
GStreamer test camera (tests/support/rtsp_server.py, snow pattern at 4 Mb/s so the encoder
really fills the bitrate, like a real camera):

* recorder_cpu_s_per_min: CPU seconds per minute of this whole process (reader thread, one
  clip being remuxed without decoding, the event loop) in steady state;
* ffmpeg_copy_cpu_s_per_min: Debian's ``ffmpeg -rtsp_transport tcp -i URL -c copy -f mp4``
  on the same stream over the same wall-clock window (the reference; run side by side so
  that both see the same load on a shared machine; /proc CPU times, both already running,
  so neither's connecting or shutdown counts);
* recorder_vs_ffmpeg: their ratio (target <= 1.0). The machine this runs on may be shared
  and noisy (ffmpeg alone varies by a quarter from run to run), so the pair is measured
  ``--repeat`` times (3), each time with a fresh camera and a fresh ffmpeg, and the run with
  the median ratio is reported; every run's ratio is listed in recorder_vs_ffmpeg_runs;
* with_motion_cpu_s_per_min: the same with motion detection on (target < 6, i.e. 10% of a
  core);
* peak_rss_mb: this process's peak resident memory;
* stall_detect_s: from SIGSTOP of the server (after 3 s of steady streaming) to the camera's
  stall event (target <= 2 x read_timeout_s);
* reconnect_s: from the server being back (after SIGKILL) to the camera being live again;
* clip_ready_ms: from the end of the post-roll to the clip's result (closed and hashed).

Usage: .venv/bin/python bench/video.py [--seconds 30] [--repeat 3]
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

from tests.support.memory import peak_rss_mb
from tests.support.rtsp import RtspTestServer
from video.camera import Camera, CameraConfig
from video.motion import MotionConfig

READ_TIMEOUT_S = 2.0
WARM_UP_S = 2.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_s(pid: int) -> float:
    """CPU seconds of a running process (Linux).

    The sum of its threads' run times from /proc/PID/task/*/schedstat, in nanoseconds: a
    process that uses a fifth of a second per 30 s would be measured to +-5 % by the clock
    ticks (1/100 s) of /proc/PID/stat, which is the fallback. ffmpeg copying one stream
    keeps the same threads throughout, so none that ended is missed. (Our own figure,
    getrusage, is in microseconds.)
    """
    try:
        total_ns = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total_ns += int((task / "schedstat").read_text().split()[0])
        return total_ns / 1e9
    except (FileNotFoundError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def has_data(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def start_ffmpeg(url: str, out: Path) -> subprocess.Popen[bytes]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("bench: ffmpeg is missing (sudo apt-get install ffmpeg)")
    return subprocess.Popen(
        [
            ffmpeg,
            "-nostdin",
            "-loglevel",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
            "-c",
            "copy",
            "-f",
            "mp4",
            "-y",
            str(out),
        ],
        stdin=subprocess.DEVNULL,
    )


async def recording_cpu(
    url: str, seconds: float, clips: Path, *, motion: bool, ffmpeg_out: Path | None
) -> tuple[float, float | None, float]:
    """Steady-state CPU seconds per minute of our camera recording one clip, and of ffmpeg
    copying the same stream over the same wall-clock window (both already running, so
    neither's start-up or shutdown counts); plus clip_ready_ms."""
    config = CameraConfig(
        url=url,
        clip_dir=clips,
        read_timeout_s=READ_TIMEOUT_S,
        motion=MotionConfig() if motion else None,
        post_roll_s=0.0,
    )
    process = start_ffmpeg(url, ffmpeg_out) if ffmpeg_out is not None else None
    try:
        async with Camera(config) as camera:
            if not await camera.wait_live(20):
                raise SystemExit("bench: the test camera never went live")
            recording = await camera.start_clip("bench")
            await asyncio.sleep(WARM_UP_S)
            ours_before, ff_before = cpu_s(), None
            if process is not None:
                ff_before = proc_cpu_s(process.pid)
            window_start = time.monotonic()
            await asyncio.sleep(seconds)
            ours = cpu_s() - ours_before
            ffmpeg = None
            if process is not None and ff_before is not None:
                ffmpeg = proc_cpu_s(process.pid) - ff_before
            window = time.monotonic() - window_start
            finish_at = time.monotonic()
            result = await camera.finish_clip(recording, post_roll_s=0.0)
            ready_ms = (time.monotonic() - finish_at) * 1000
    finally:
        if process is not None:
            process.send_signal(signal.SIGINT)  # ffmpeg finishes its file and exits
            process.wait(30)
    if result.frame_count < seconds * 10:
        raise SystemExit(f"bench: the clip has only {result.frame_count} frames")
    if ffmpeg_out is not None and not await asyncio.to_thread(has_data, ffmpeg_out):
        raise SystemExit("bench: ffmpeg wrote nothing")
    per_min = 60 / window
    return ours * per_min, None if ffmpeg is None else ffmpeg * per_min, ready_ms


async def stall_and_reconnect(server: RtspTestServer, clips: Path) -> tuple[float, float]:
    config = CameraConfig(
        url=server.url, clip_dir=clips, read_timeout_s=READ_TIMEOUT_S, motion=None
    )
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
    parser.add_argument(
        "--repeat", type=int, default=3, help="recorder/ffmpeg pairs; the median is reported (3)"
    )
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    args = parser.parse_args()
    server = RtspTestServer(
        width=args.width,
        height=args.height,
        fps=15,
        bitrate_kbps=4000,
        keyint=15,
        pattern="snow",
    )
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            runs: list[tuple[float, float, float, float]] = []
            for _ in range(max(1, args.repeat)):
                recorder, ffmpeg, ready_ms = asyncio.run(
                    recording_cpu(
                        server.url,
                        args.seconds,
                        work / "clips",
                        motion=False,
                        ffmpeg_out=work / "ffmpeg.mp4",
                    )
                )
                if not ffmpeg:
                    raise SystemExit("bench: ffmpeg used no CPU at all")
                runs.append((recorder / ffmpeg, recorder, ffmpeg, ready_ms))
            ratios = [run[0] for run in runs]
            _, recorder, ffmpeg, ready_ms = sorted(runs)[len(runs) // 2]
            with_motion, _, _ = asyncio.run(
                recording_cpu(
                    server.url, args.seconds, work / "clips", motion=True, ffmpeg_out=None
                )
            )
            stall_s, reconnect_s = asyncio.run(stall_and_reconnect(server, work / "clips"))
    finally:
        server.stop()
    print(
        json.dumps(
            {
                "stream": f"{args.width}x{args.height}@15fps 4Mb/s h264, {args.seconds:g} s each",
                "recorder_cpu_s_per_min": round(recorder, 3),
                "ffmpeg_copy_cpu_s_per_min": round(ffmpeg, 3),
                "recorder_vs_ffmpeg": round(recorder / ffmpeg, 3),
                "recorder_vs_ffmpeg_runs": [round(r, 3) for r in ratios],
                "with_motion_cpu_s_per_min": round(with_motion, 3),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "stall_detect_s": round(stall_s, 3),
                "read_timeout_s": READ_TIMEOUT_S,
                "reconnect_s": round(reconnect_s, 3),
                "clip_ready_ms": round(ready_ms, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
