"""Generates a small H.264 test video with PyAV, for the demo and for tests that need no server.

PyAV's wheels ship libx264 (and the MPEG-4 part 2 encoder as a fallback). The picture is a
bright block sliding across a dark background, with a fixed keyframe interval, like a
camera configured as docs/camera.md recommends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np

from video.errors import CameraConfigError


def pick_h264_encoder() -> str:
    for name in ("libx264", "libopenh264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: S112 - not in this build, try the next one
            continue
        return name
    raise CameraConfigError("PyAV has neither an H.264 nor an MPEG-4 encoder")


def generate_test_video(
    path: Path | str,
    *,
    seconds: float = 4.0,
    fps: int = 15,
    width: int = 320,
    height: int = 240,
    keyframe_interval: int = 15,
) -> Path:
    """Write a test video (MP4) and return its path."""
    if seconds <= 0 or fps <= 0 or width < 32 or height < 32 or width % 2 or height % 2:
        raise CameraConfigError("bad test video size, rate or duration")
    out_path = Path(path)
    encoder = pick_h264_encoder()
    with av.open(str(out_path), "w", format="mp4") as container:
        stream: Any = container.add_stream(encoder, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = keyframe_interval
        if encoder == "libx264":
            stream.codec_context.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "x264-params": f"keyint={keyframe_interval}:min-keyint={keyframe_interval}",
            }
        frames = max(1, round(seconds * fps))
        block = max(8, width // 8)
        for i in range(frames):
            y = np.full((height, width), 16, np.uint8)
            x0 = (i * 4) % (width - block)
            y[height // 3 : height // 3 + block, x0 : x0 + block] = 235
            uv = np.full((height // 2, width), 128, np.uint8)
            frame = av.VideoFrame.from_ndarray(np.vstack([y, uv]), format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out_path
