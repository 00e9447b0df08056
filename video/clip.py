"""Clips: the video of one entry, remuxed (never decoded) into fragmented MP4.

A clip starts with the pre-roll ring (so it opens a few seconds before the unlock, at a
keyframe), goes on with the live packets, and ends ``post_roll_s`` after it is asked to
finish. Packets are copied as they are (``add_stream_from_template``), with timestamps
rebased to start at zero. The camera's audio goes in too: AAC as it is, G.711 (A-law,
mu-law) transcoded to AAC, because MP4 players do not take G.711.

A new timeline (a reconnect, or the camera's clock jumping back or ahead) restarts the
clip's timeline at its next keyframe, placed after the last picture by the time that passed
between them, so the clip's length is the time the visit took; the gap is recorded
(:class:`ClipGap`). New codec parameters (a new resolution) start a new *part*: a new file
with its own header, so every player plays each part; the entry lists the parts.

A packet is written only once a later one of the same timeline shows a greater
presentation time: the last packets of a connection that died (often truncated) and the
trailing frames whose B-frames were cut off at the end are never written, so a clip never
ends on a picture that cannot be shown in order.

The writer runs on its own thread, off the event loop. The MP4 is fragmented
(``frag_keyframe+empty_moov+default_base_moof``): a clip cut short by a crash or power cut
still plays up to its last fragment. Once closed, each file is hashed (SHA-256) for the
``clip.recorded`` audit entry. HEVC is tagged ``hvc1`` (Apple's players refuse ``hev1``).
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
from av.audio.fifo import AudioFifo
from av.audio.resampler import AudioResampler

from video.errors import ClipFailed
from video.packet import AudioInfo, StreamInfo, TimelineCause, VideoPacket
from video.priority import lower_thread_priority
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
# Packets held back waiting for a later one with a greater presentation time: more than the
# deepest B-frame pyramid; a stream whose timestamps never rise is written anyway past it.
_MAX_HELD = 32
AAC_FRAME = 1024
AAC_BIT_RATE = 32_000


@dataclass(frozen=True, slots=True)
class ClipPart:
    """One file of a clip: a clip has several when the camera's picture size changed."""

    path: Path
    sha256: str
    size_bytes: int
    codec: str
    width: int
    height: int
    start_s: float  # where this part begins on the clip's timeline
    duration_s: float
    frame_count: int

    def audit_fields(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "start_ms": round(self.start_s * 1000),
            "duration_ms": round(self.duration_s * 1000),
            "frame_count": self.frame_count,
        }


@dataclass(frozen=True, slots=True)
class ClipGap:
    """Time the clip has no new picture for: ``at_s`` on the clip's timeline, ``gap_s`` long.

    ``cause`` is a :class:`~video.packet.TimelineCause` value, or ``packets_dropped`` when
    the writer fell behind; ``jump_s`` is how far the camera's clock jumped, if it did.
    """

    at_s: float
    gap_s: float
    cause: str
    jump_s: float = 0.0

    def audit_fields(self) -> dict[str, object]:
        return {
            "at_ms": round(self.at_s * 1000),
            "gap_ms": round(self.gap_s * 1000),
            "cause": self.cause,
            "jump_ms": round(self.jump_s * 1000),
        }


@dataclass(frozen=True, slots=True)
class ClipResult:
    """A finished clip: what the ``clip.recorded`` audit entry holds.

    ``path``, ``sha256`` and ``size_bytes`` are the first part's; ``parts`` lists every file
    (one, unless the picture size changed). ``duration_s`` is the clip's timeline, on which
    gaps are placed by the time that passed: the time the visit took.
    """

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
    parts: tuple[ClipPart, ...] = ()
    gaps: tuple[ClipGap, ...] = ()
    audio: str | None = None  # the camera's audio codec, if the clip has its audio
    audio_transcoded: bool = False  # True: G.711 made AAC (MP4 does not carry it)
    camera: str = ""

    def audit_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {
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
            "part_count": max(1, len(self.parts)),
            "gaps": [gap.audit_fields() for gap in self.gaps],
            "audio": self.audio,
            "audio_transcoded": self.audio_transcoded,
        }
        if len(self.parts) > 1:
            fields["parts"] = [part.audit_fields() for part in self.parts]
        if self.camera:
            fields["camera"] = self.camera
        return fields


def clip_path(directory: Path, session_id: str, now: datetime, camera: str = "") -> Path:
    """A fresh file name: UTC time, the session id, then the camera's name if it has one,
    restricted to safe characters."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", session_id)[:64] or "session"
    stem = f"{now.strftime('%Y%m%dT%H%M%S')}Z-{safe}"
    if camera:
        stem += "-" + (re.sub(r"[^A-Za-z0-9_-]", "_", camera)[:32] or "camera")
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


class ClipAudio:
    """A clip part's audio: AAC copied as it came, or G.711 decoded and encoded to AAC."""

    def __init__(self, container: Any, info: AudioInfo) -> None:
        self.info = info
        self.time_base = info.time_base
        self.last_dts: int | None = None
        self._next = 0  # transcoding: the next AAC frame's first sample
        self._started = False
        if info.remuxed:
            self.stream = container.add_stream_from_template(info.template)
            return
        layout = "mono" if info.channels == 1 else "stereo"
        self.stream = container.add_stream("aac", rate=info.sample_rate)
        self.stream.layout = layout
        self.stream.codec_context.bit_rate = AAC_BIT_RATE
        self._decoder = cast(Any, av.CodecContext.create(info.codec, "r"))
        self._decoder.sample_rate = info.sample_rate
        self._decoder.layout = layout
        self._resampler = AudioResampler(format="fltp", layout=layout, rate=info.sample_rate)
        self._fifo = AudioFifo()
        self._sample_base = Fraction(1, info.sample_rate)

    def write(self, container: Any, packet: VideoPacket, pts: int) -> None:
        """Write one packet whose time on this part's timeline is ``pts`` (its time base)."""
        if pts < 0 or (self.last_dts is not None and pts <= self.last_dts):
            return  # before the part's first picture, or not moving forward: not playable
        self.last_dts = pts
        if self.info.remuxed:
            out = av.Packet(cast(bytes, packet.data))
            out.pts = out.dts = pts
            out.time_base = self.time_base
            out.stream = self.stream
            container.mux(out)
            return
        start = round(pts * self.time_base * self.info.sample_rate)
        expected = self._next + self._fifo.samples
        if not self._started or abs(start - expected) > self.info.sample_rate // 2:
            # The first packet, or audio missing for half a second (a gap in the clip): the
            # AAC frames go on from this packet's time, never back.
            if self._fifo.samples:
                self._fifo.read()
            self._next = max(start, self._next)
            self._started = True
        for frame in self._decoder.decode(av.Packet(bytes(packet.data))):
            for resampled in self._resampler.resample(frame):
                resampled.pts = None
                self._fifo.write(resampled)
        while self._fifo.samples >= AAC_FRAME:
            chunk = self._fifo.read(AAC_FRAME)
            assert chunk is not None  # the fifo holds that many
            chunk.pts = self._next
            chunk.time_base = self._sample_base
            self._next += AAC_FRAME
            self._mux(container, self.stream.encode(chunk))

    def close(self, container: Any) -> None:
        if not self.info.remuxed and self._started:
            self._mux(container, self.stream.encode(None))

    def _mux(self, container: Any, packets: Any) -> None:
        for out in packets:
            out.stream = self.stream
            container.mux(out)


class _Part:
    """A file of the clip being written, and where its timeline stands."""

    __slots__ = (
        "audio",
        "container",
        "first_pts",
        "frames",
        "info",
        "last_dts",
        "last_step",
        "max_pts",
        "path",
        "start_s",
        "time_base",
        "video",
    )

    def __init__(self, path: Path, info: StreamInfo, container: Any, start_s: float) -> None:
        self.path = path
        self.info = info
        self.container = container
        self.video = container.add_stream_from_template(info.template)
        if info.codec == "hevc":
            # FFmpeg tags HEVC in MP4 hev1 by default; Apple's players take only hvc1.
            self.video.codec_tag = "hvc1"
        self.audio = ClipAudio(container, info.audio) if info.audio is not None else None
        self.start_s = start_s
        self.time_base = info.time_base
        self.frames = 0
        self.first_pts: int | None = None
        self.max_pts = 0
        self.last_dts: int | None = None
        self.last_step = 0

    def step(self) -> int:
        """One frame's duration in ticks: the last one seen, else the nominal rate's."""
        if self.last_step > 0:
            return self.last_step
        fps = self.info.nominal_fps or 15.0
        return max(1, round(1 / (fps * self.time_base)))

    def position_s(self, dts: int) -> float:
        """Where a packet with this (output) dts is on the clip's timeline."""
        return self.start_s + float(dts * self.time_base)

    def duration_s(self) -> float:
        if self.first_pts is None:
            return 0.0
        return float((self.max_pts - self.first_pts + self.last_step) * self.time_base)

    def close(self) -> None:
        try:
            if self.audio is not None:
                self.audio.close(self.container)
        finally:
            self.container.close()


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
        camera: str = "",
    ) -> None:
        self.session_id = session_id
        self.path = path
        self.camera = camera
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
        self._part: _Part | None = None
        self._closed_parts: list[_Part] = []
        self._epoch: int | None = None
        self._offset = 0  # subtracted from the current timeline's video timestamps
        self._audio_offset = 0  # ... and from its audio timestamps
        self._last_arrival = 0.0  # when the last picture written arrived
        self._held: list[VideoPacket] = []
        self._held_audio: VideoPacket | None = None
        self._gaps: list[ClipGap] = []
        self._frames = 0
        self._connections = 0
        self._preroll_s = 0.0
        self._need_keyframe = False

    @property
    def finishing(self) -> bool:
        return self._stop_at is not None

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file of the clip so far (several when the picture size changed)."""
        parts = [*self._closed_parts, *([self._part] if self._part is not None else [])]
        return (self.path, *(p.path for p in parts if p.path != self.path))

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
        # Remuxing is background work (video.priority): a clip starts at the grant, right
        # before the unlock, with seconds of pre-roll to write at once.
        lower_thread_priority()
        pending = deque(self._preroll)
        self._preroll = ()
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
                # The disk fell behind and packets were lost just before this one: what
                # follows does not decode until the next keyframe, so resume there.
                gap = not from_preroll and self._sub.last_gap
                if packet.audio:
                    self._take_audio(packet)
                else:
                    self._take_video(packet, gap)
                if from_preroll:
                    # Hand the interpreter over between pre-roll packets: four cameras each
                    # writing seconds of pre-roll in one go held the GIL away from the event
                    # loop, which is unlocking the door meanwhile (bench/video.py).
                    time.sleep(0)
        finally:
            # Whatever is still held back is not written: the end of a post-roll, or frames
            # displayed after pictures that never came.
            if self._part is not None:
                self._part.close()
        parts = [*self._closed_parts, *([self._part] if self._part is not None else [])]
        if self._part is None or self._frames == 0:
            for part in parts:
                with contextlib.suppress(FileNotFoundError):
                    part.path.unlink()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            raise ClipFailed(f"no video reached clip {self.path.name}: the camera was down")
        return self._result(parts)

    def _result(self, parts: list[_Part]) -> ClipResult:
        done = tuple(
            ClipPart(
                path=part.path,
                sha256=sha256_file(part.path),
                size_bytes=part.path.stat().st_size,
                codec=part.info.codec,
                width=part.info.width,
                height=part.info.height,
                start_s=part.start_s,
                duration_s=part.duration_s(),
                frame_count=part.frames,
            )
            for part in parts
        )
        last = parts[-1]
        audio = next((p.info.audio for p in parts if p.audio is not None), None)
        return ClipResult(
            session_id=self.session_id,
            path=done[0].path,
            sha256=done[0].sha256,
            duration_s=last.start_s + last.duration_s(),
            frame_count=self._frames,
            size_bytes=done[0].size_bytes,
            preroll_s=self._preroll_s,
            started_at=self.started_at.isoformat().replace("+00:00", "Z"),
            dropped_packets=self._sub.dropped,
            reconnects=max(0, self._connections - 1),
            parts=done,
            gaps=tuple(self._gaps),
            audio=None if audio is None else audio.codec,
            audio_transcoded=audio is not None and not audio.remuxed,
            camera=self.camera,
        )

    # -- video -----------------------------------------------------------------------------

    def _take_video(self, packet: VideoPacket, gap: bool) -> None:
        """Hold the packet until a later one shows a greater presentation time; write what
        that releases, in decode order."""
        held = self._held
        if held and held[-1].epoch != packet.epoch:
            info = self._info_for(packet.epoch)
            if info is not None and info.cause is not TimelineCause.CONNECTED:
                # The same connection went on (a jump, new parameters): what is held is whole.
                for waiting in held:
                    self._write(waiting)
            # Else a connection ended: its last packets may be truncated (a connection that
            # died hands over the frame it was assembling), and nothing will complete them.
            held.clear()
        held.append(packet)
        count = len(held)
        if count == 2:
            if held[0].pts < packet.pts:
                self._write(held.pop(0))
        elif count > 2:
            # later[i]: the greatest pts after held[i]. A packet goes once one after it shows
            # a greater one: every picture displayed before it has then arrived.
            later = [0] * count
            best = held[-1].pts
            for i in range(count - 2, -1, -1):
                later[i] = best
                best = max(best, held[i].pts)
            ready = 0
            while ready < count - 1 and held[ready].pts < later[ready]:
                ready += 1
            for _ in range(ready):
                self._write(held.pop(0))
            if len(held) > _MAX_HELD:
                self._write(held.pop(0))
        if gap:
            # What was held before the loss cannot be completed; the clip resumes at a keyframe.
            del held[:-1]
            self._need_keyframe = True

    def _write(self, packet: VideoPacket) -> None:
        if packet.epoch != self._epoch:
            if not packet.keyframe:
                return  # nothing of a new timeline is written before its first keyframe
            info = self._info_for(packet.epoch)
            if info is None or not self._begin_timeline(packet, info):
                return
        part = self._part
        assert part is not None
        if self._need_keyframe:
            if not packet.keyframe:
                return
            self._need_keyframe = False
            if part.last_dts is not None:
                resume = packet.dts - self._offset
                skipped = resume - part.last_dts - part.step()
                self._gaps.append(
                    ClipGap(
                        part.position_s(part.last_dts + part.step()),
                        max(0.0, float(skipped * part.time_base)),
                        "packets_dropped",
                    )
                )
        dts = packet.dts - self._offset
        pts = packet.pts - self._offset
        if part.last_dts is not None and dts <= part.last_dts:
            return  # the muxer needs strictly increasing dts
        # Zero-copy: PyAV wraps any buffer (its stub says bytes), here often a read-only view.
        out = av.Packet(cast(bytes, packet.data))
        out.dts = dts
        out.pts = pts
        out.time_base = packet.time_base
        out.is_keyframe = packet.keyframe
        out.stream = part.video
        part.container.mux(out)
        if part.last_dts is not None:
            part.last_step = dts - part.last_dts
        part.last_dts = dts
        if part.first_pts is None:
            part.first_pts = pts
        part.max_pts = max(part.max_pts, pts)
        part.frames += 1
        self._frames += 1
        self._last_arrival = packet.arrived_at

    def _begin_timeline(self, keyframe: VideoPacket, info: StreamInfo) -> bool:
        """A new timeline's first keyframe: place it on the clip's timeline (a new part if
        its codec parameters differ), and record the gap before it."""
        if info.cause is TimelineCause.CONNECTED:
            self._connections += 1
        part = self._part
        if part is None or part.last_dts is None:
            if part is None:
                self._open_part(keyframe, info, 0.0)
                self._preroll_s = max(0.0, self.started_monotonic - keyframe.arrived_at)
            self._set_offset(keyframe, info, keyframe.dts)
            return True
        # Placed after the last picture by the time that passed between them (at least one
        # frame): the clip's timeline keeps the visit's real length.
        step = part.step()
        waited = max(0.0, keyframe.arrived_at - self._last_arrival)
        ticks = max(step, round(waited / part.time_base))
        self._gaps.append(
            ClipGap(
                part.position_s(part.last_dts + step),
                float((ticks - step) * part.time_base),
                info.cause.value,
                info.jump_s,
            )
        )
        if info.same_parameters(part.info) and info.time_base == part.time_base:
            self._set_offset(keyframe, info, keyframe.dts - (part.last_dts + ticks))
            return True
        start_s = part.position_s(part.last_dts + ticks)
        part.close()
        self._closed_parts.append(part)
        self._part = None
        self._open_part(keyframe, info, start_s)
        self._set_offset(keyframe, info, keyframe.dts)
        return True

    def _set_offset(self, keyframe: VideoPacket, info: StreamInfo, offset: int) -> None:
        self._epoch = keyframe.epoch
        self._offset = offset
        self._held_audio = None
        audio = self._part.audio if self._part is not None else None
        if audio is not None:
            self._audio_offset = round(offset * info.time_base / audio.time_base)

    def _open_part(self, keyframe: VideoPacket, info: StreamInfo, start_s: float) -> None:
        number = len(self._closed_parts) + 1
        path = (
            self.path
            if number == 1
            else self.path.with_name(f"{self.path.stem}-part{number}{self.path.suffix}")
        )
        # Created here, exclusively and private to the household, before FFmpeg opens it.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        container = av.open(str(path), "w", format="mp4", options=dict(FRAGMENTED_MP4))
        try:
            self._part = _Part(path, info, container, start_s)
        except BaseException:
            container.close()
            raise

    # -- audio -----------------------------------------------------------------------------

    def _take_audio(self, packet: VideoPacket) -> None:
        held = self._held_audio
        self._held_audio = packet
        if held is None or held.epoch != packet.epoch or held.epoch != self._epoch:
            return
        part = self._part
        if part is None or part.audio is None or held.time_base != part.audio.time_base:
            return
        part.audio.write(part.container, held, held.pts - self._audio_offset)
