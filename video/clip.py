"""Clips: the video of one entry, remuxed (never decoded) into fragmented MP4.

A clip starts with the pre-roll ring (so it opens a few seconds before the unlock, at a
keyframe), goes on with the live packets, and ends ``post_roll_s`` after it is asked to
finish. Packets are copied as they are (``add_stream_from_template``), with timestamps
rebased to start at zero. A reconnect in the middle of a clip continues it at the next
keyframe of the new connection, right after the last picture written.

The writer runs on its own thread, off the event loop. The MP4 is fragmented
(``frag_keyframe+empty_moov+default_base_moof``): a clip cut short by a crash or power cut
still plays up to its last fragment. Once closed, the file is hashed (SHA-256) for the
``clip.recorded`` audit entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av

from video.errors import ClipFailed
from video.packet import StreamInfo, VideoPacket
from video.subscription import DELIVERY_LAG_S, PacketSubscription

log = logging.getLogger("threshold.video")

DEFAULT_POST_ROLL_S = 5.0
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
# The writer works in batches: woken once per CLIP_WAKE_EVERY packets (about a second at
# 15 fps) or after _POLL_S, and at once by finish()/cut_short(). Each wake is a thread switch,
# a GIL hand-off with the reader and Python run with cold caches: waking per packet, then per
# 8, cost measurably more (docs/camera.md). A second is also what a crash can lose anyway:
# the muxer holds the current fragment (one keyframe interval) in memory until it ends.
CLIP_WAKE_EVERY = 16
_POLL_S = 1.0
# After the post-roll's end, the packets that arrived before it may still be on their way
# (the reader hands them over in batches): wait for them this long at most, looking often.
_LAST_PACKETS_S = DELIVERY_LAG_S + 0.1
_FINISHING_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class ClipResult:
    """A finished clip: what the ``clip.recorded`` audit entry holds."""

    session_id: str
    path: Path
    sha256: str
    duration_s: float
    frame_count: int
    size_bytes: int
    preroll_s: float
    started_at: str  # RFC 3339 UTC, the wall time recording was asked to start
    dropped_packets: int
    reconnects: int  # connection changes the clip spans

    def audit_fields(self) -> dict[str, object]:
        return {
            "session_id": self.session_id,
            "path": str(self.path),
            "sha256": self.sha256,
            "duration_s": round(self.duration_s, 3),
            "frame_count": self.frame_count,
            "size_bytes": self.size_bytes,
            "preroll_s": round(self.preroll_s, 3),
            "started_at": self.started_at,
            "dropped_packets": self.dropped_packets,
            "reconnects": self.reconnects,
        }


def clip_path(directory: Path, session_id: str, now: datetime) -> Path:
    """A fresh file name: UTC time then the session id, restricted to safe characters."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", session_id)[:64] or "session"
    stem = f"{now.strftime('%Y%m%dT%H%M%S')}Z-{safe}"
    path = directory / f"{stem}.mp4"
    n = 1
    while path.exists():
        path = directory / f"{stem}-{n}.mp4"
        n += 1
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ClipRecording:
    """A clip being written. Made by :meth:`ClipRecording.begin`; ended by :meth:`finish`."""

    def __init__(
        self,
        session_id: str,
        path: Path,
        preroll: tuple[VideoPacket, ...],
        subscription: PacketSubscription,
        info_for: Callable[[int], StreamInfo | None],
        loop: asyncio.AbstractEventLoop,
        post_roll_s: float,
    ) -> None:
        self.session_id = session_id
        self.path = path
        self.post_roll_s = post_roll_s
        self.started_at = datetime.now(UTC)
        self.started_monotonic = time.monotonic()
        self._preroll = preroll
        self._sub = subscription
        self._info_for = info_for
        self._loop = loop
        self._done: asyncio.Future[ClipResult] = loop.create_future()
        self._stop_at: float | None = None
        self._cut = False  # cut short: do not wait for packets still on their way
        self._stop_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"clip {path.name}", daemon=True)
        # Written by the writer thread only.
        self._container: Any = None
        self._ostream: Any = None
        self._epoch: int | None = None
        self._offset = 0  # subtracted from the current epoch's timestamps
        self._time_base = Fraction(1, 90_000)
        self._last_dts: int | None = None
        self._last_step = 0
        self._first_pts: int | None = None
        self._max_pts = 0
        self._frames = 0
        self._epochs = 0
        self._preroll_s = 0.0
        self._need_keyframe = False

    @property
    def finishing(self) -> bool:
        return self._stop_at is not None

    def start(self) -> None:
        self._thread.start()

    def finish(self, post_roll_s: float | None = None) -> asyncio.Future[ClipResult]:
        """Stop after the post-roll; the future resolves once the file is closed and hashed."""
        with self._stop_lock:
            if self._stop_at is None:
                roll = self.post_roll_s if post_roll_s is None else post_roll_s
                self._stop_at = time.monotonic() + max(0.0, roll)
        self._sub.wake()
        return self._done

    def cut_short(self) -> asyncio.Future[ClipResult]:
        """Stop now, even in the middle of a post-roll (the gateway is shutting down)."""
        with self._stop_lock:
            now = time.monotonic()
            if self._stop_at is None or self._stop_at > now:
                self._stop_at = now
            self._cut = True
        self._sub.wake()
        return self._done

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            result = self._record()
        except BaseException as exc:
            error = (
                exc
                if isinstance(exc, ClipFailed)
                else ClipFailed(
                    f"clip {self.path.name} could not be written: {type(exc).__name__}: {exc}"
                )
            )
            self._resolve(None, error)
        else:
            self._resolve(result, None)
        finally:
            self._sub.close()

    def _resolve(self, result: ClipResult | None, error: BaseException | None) -> None:
        def settle() -> None:
            if self._done.done():
                return
            if error is not None:
                self._done.set_exception(error)
            else:
                assert result is not None
                self._done.set_result(result)

        with contextlib.suppress(RuntimeError):  # loop closed: nobody awaits the clip
            self._loop.call_soon_threadsafe(settle)

    def _record(self) -> ClipResult:
        pending = deque(self._preroll)
        self._preroll = ()
        # Each packet is written once the next one of the same connection has arrived. When
        # a connection dies, FFmpeg hands over the frame it was assembling, often truncated
        # (measured: a 6-byte "frame" after a SIGKILL); the held packet of a connection that
        # ended is therefore dropped, and so is the last one at the end of the post-roll.
        held: VideoPacket | None = None
        try:
            while True:
                from_preroll = bool(pending)
                stop_at = self._stop_at
                wait = _POLL_S
                if stop_at is not None:  # the end of the post-roll is not missed by a batch
                    left = stop_at - time.monotonic()
                    wait = min(wait, left + 0.01 if left > 0 else _FINISHING_POLL_S)
                packet = pending.popleft() if pending else self._sub.get(wait)
                stop_at = self._stop_at
                if packet is None:
                    if self._sub.closed or (
                        stop_at is not None
                        and time.monotonic() >= stop_at + (0.0 if self._cut else _LAST_PACKETS_S)
                    ):
                        break
                    continue
                if stop_at is not None and packet.arrived_at >= stop_at:
                    break
                if held is not None and held.epoch == packet.epoch:
                    self._write(held)
                if not from_preroll and self._sub.last_gap:
                    # The disk fell behind and packets were lost just before this one: what
                    # follows does not decode until the next keyframe, so resume there.
                    self._need_keyframe = True
                held = packet
        finally:
            if self._container is not None:
                self._container.close()
        if self._container is None or self._frames == 0:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            raise ClipFailed(f"no video reached clip {self.path.name}: the camera was down")
        first = self._first_pts or 0
        step = self._last_step or 0
        duration = float((self._max_pts - first + step) * self._time_base)
        return ClipResult(
            session_id=self.session_id,
            path=self.path,
            sha256=sha256_file(self.path),
            duration_s=duration,
            frame_count=self._frames,
            size_bytes=self.path.stat().st_size,
            preroll_s=self._preroll_s,
            started_at=self.started_at.isoformat().replace("+00:00", "Z"),
            dropped_packets=self._sub.dropped,
            reconnects=max(0, self._epochs - 1),
        )

    def _open(self, packet: VideoPacket) -> bool:
        info = self._info_for(packet.epoch)
        if info is None:
            return False
        # Created here, exclusively and private to the household, before FFmpeg opens it.
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        container = av.open(str(self.path), "w", format="mp4", options=dict(FRAGMENTED_MP4))
        self._ostream = container.add_stream_from_template(info.template)
        self._container = container
        self._time_base = packet.time_base
        # How far before the request the clip begins.
        self._preroll_s = max(0.0, self.started_monotonic - packet.arrived_at)
        return True

    def _write(self, packet: VideoPacket) -> None:
        if packet.epoch != self._epoch:
            if not packet.keyframe:
                return  # nothing of a new connection decodes before its first keyframe
            if self._container is None and not self._open(packet):
                return
            if packet.time_base != self._time_base:
                return  # a camera that changed its clock mid-clip: keep what we have
            if self._last_dts is None:
                self._offset = packet.dts
            else:
                self._offset = packet.dts - (self._last_dts + max(1, self._last_step))
            self._epoch = packet.epoch
            self._epochs += 1
        if self._need_keyframe:
            if not packet.keyframe:
                return
            self._need_keyframe = False
        dts = packet.dts - self._offset
        pts = packet.pts - self._offset
        if self._last_dts is not None and dts <= self._last_dts:
            return  # the muxer needs strictly increasing dts
        # Zero-copy: PyAV wraps any buffer (its stub says bytes), here often a read-only view.
        out = av.Packet(cast(bytes, packet.data))
        out.dts = dts
        out.pts = pts
        out.time_base = packet.time_base
        out.is_keyframe = packet.keyframe
        out.stream = self._ostream
        self._container.mux(out)
        if self._last_dts is not None:
            self._last_step = dts - self._last_dts
        self._last_dts = dts
        if self._first_pts is None:
            self._first_pts = pts
        self._max_pts = max(self._max_pts, pts)
        self._frames += 1
