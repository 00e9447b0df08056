"""A one-off check of a camera, for ``threshold camera check``: what it sends, and how fast.

Connects once (no reconnects), reads until three keyframes have arrived (so the keyframe
interval and frame rate are measured, not taken from the SDP), decodes the first picture
for the time to first frame, and encodes a JPEG snapshot. Blocking; no event loop.

It returns as soon as the answer is final: a failed connection (refused credentials, a
transport the camera does not offer, nothing listening) ends it at once, with the reader's
own words, rather than after the whole time budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import av

from video.errors import CameraError, CameraUnavailable
from video.health import StreamState
from video.snapshot import decode_latest, encode_jpeg, make_decoder, to_av_packet
from video.source import SourceConfig, open_source, redact_url


@dataclass(frozen=True, slots=True)
class CameraCheck:
    url: str  # without credentials
    codec: str
    width: int
    height: int
    fps: float | None
    keyframe_interval_s: float | None
    first_frame_s: float
    snapshot_path: Path
    snapshot_bytes: int
    audio: str | None = None  # the audio codec the camera sends, if any

    def as_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "fps": None if self.fps is None else round(self.fps, 2),
            "keyframe_interval_s": (
                None if self.keyframe_interval_s is None else round(self.keyframe_interval_s, 3)
            ),
            "time_to_first_frame_s": round(self.first_frame_s, 3),
            "snapshot": str(self.snapshot_path),
            "snapshot_bytes": self.snapshot_bytes,
            "audio": self.audio,
        }


def check_camera(
    url: str,
    snapshot_path: Path,
    *,
    within_s: float = 15.0,
    read_timeout_s: float = 2.0,
    transport: str = "tcp",
) -> CameraCheck:
    """Check one camera; raises CameraUnavailable if it sends nothing usable in time, or the
    reader's typed error (``camera_auth_failed``, ``camera_transport_refused``) at once."""
    config = SourceConfig(
        url=url,
        transport=transport,
        open_timeout_s=min(within_s, 10.0),
        read_timeout_s=read_timeout_s,
        backoff_s=(within_s,),  # one attempt: a check reports, it does not retry
    )
    source = open_source(url, config)
    source.log_failures = False  # the one answer is this function's
    _, sub = source.subscribe(max_packets=10_000)
    # A connect or a disconnect wakes the loop below: a failed attempt is the final answer.
    source.add_listener(sub.wake)
    started = time.monotonic()
    source.start()
    try:
        first_frame_s: float | None = None
        decoder = None
        keyframes = 0
        deadline = started + within_s
        while keyframes < 3 and time.monotonic() < deadline:
            packet = sub.get(min(0.5, max(0.0, deadline - time.monotonic())))
            if packet is None:
                if source.health().state in (StreamState.DISCONNECTED, StreamState.STOPPED):
                    break  # one attempt, and it failed or ended: waiting changes nothing
                continue
            if packet.keyframe:
                keyframes += 1
            if first_frame_s is None and (decoder is not None or packet.keyframe):
                info = source.info_for(packet.epoch)
                if info is None:
                    continue
                decoder = decoder or make_decoder(info)
                try:
                    if decoder.decode(to_av_packet(packet)):
                        first_frame_s = time.monotonic() - started
                except av.FFmpegError:
                    decoder = None
        info = source.info
        group = source.latest_group()
        if info is None or first_frame_s is None or not group:
            final: CameraError | None = source.final_error
            if final is not None:
                raise final
            problem = source.last_error or "no picture"
            raise CameraUnavailable(
                f"{redact_url(url)} sent no decodable picture within {within_s:g} s ({problem})"
            )
        jpeg = encode_jpeg(decode_latest(info, group))
        health = source.health()
    finally:
        sub.close()
        source.stop()
    snapshot_path.write_bytes(jpeg)
    return CameraCheck(
        url=redact_url(url),
        codec=info.codec,
        width=info.width,
        height=info.height,
        fps=health.fps,
        keyframe_interval_s=health.keyframe_interval_s,
        first_frame_s=first_frame_s,
        snapshot_path=snapshot_path,
        snapshot_bytes=len(jpeg),
        audio=None if info.audio is None else info.audio.codec,
    )
