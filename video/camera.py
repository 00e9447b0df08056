"""The camera as the gateway sees it: one object to start, ask, record and close.

:class:`Camera` ties the reader thread, the pre-roll ring, clips, snapshots, motion and
the stall watch together behind an asyncio API. Everything blocking (demuxing, muxing,
hashing, decoding, deleting old clips) runs on threads; the event loop only awaits.

The gateway's use, per access session::

    if ticket requires the camera and not camera.live: deny (camera_unavailable)
    recording = await camera.start_clip(session.id)      # at grant, before the unlock
    ...                                                   # camera.stalled -> relock early
    result = await camera.finish_clip(recording)          # after the relock
    audit("clip.recorded", result.audit_fields())
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from video.clip import CLIP_WAKE_EVERY, DEFAULT_POST_ROLL_S, ClipRecording, ClipResult, clip_path
from video.errors import CameraConfigError, CameraUnavailable, SnapshotFailed
from video.health import CameraHealth
from video.motion import MotionConfig, MotionEvent, MotionEventKind
from video.motion_feed import DEFAULT_ANALYSIS_FPS, MotionFeed
from video.packet import StreamInfo, VideoPacket
from video.priority import background_executor
from video.retention import ClipDeleted, enforce_retention
from video.snapshot import decode_latest, encode_jpeg
from video.source import SourceConfig, StreamReader, open_source

log = logging.getLogger("threshold.video")

DEFAULT_CLIP_BUDGET_BYTES = 2 * 1024**3
_WATCH_PERIOD_S = 0.25  # while not live: how often to look for the camera coming back
_MIN_WATCH_S = 0.02


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """The camera's settings (the ``[camera]`` section of the gateway's config)."""

    url: str
    clip_dir: Path
    read_timeout_s: float = 2.0
    open_timeout_s: float = 5.0
    transport: str = "tcp"
    preroll_s: float = 5.0
    post_roll_s: float = DEFAULT_POST_ROLL_S
    ring_max_bytes: int = 32 * 1024 * 1024
    clip_budget_bytes: int = DEFAULT_CLIP_BUDGET_BYTES
    max_silence_s: float = 4.0
    motion: MotionConfig | None = field(default_factory=MotionConfig)
    motion_fps: float = DEFAULT_ANALYSIS_FPS
    # The camera's low-resolution substream, if it has one: motion decodes that instead of
    # the main stream (a tenth of the decoding). Clips and snapshots use the main stream.
    motion_url: str | None = None
    #: Record the camera's audio in clips. Off where the law forbids recording speech: the
    #: audio track is then not even set up with the camera.
    audio: bool = True
    analyzeduration_us: int = 500_000
    probesize: int = 262_144
    #: The camera's name (several cameras: in clip file names and audit entries).
    name: str = ""

    def __post_init__(self) -> None:
        if self.post_roll_s < 0 or self.preroll_s < 0:
            raise CameraConfigError("pre-roll and post-roll must be >= 0 seconds")
        if self.clip_budget_bytes <= 0:
            raise CameraConfigError("the clip budget must be > 0 bytes")

    def source_config(self) -> SourceConfig:
        return SourceConfig(
            url=self.url,
            transport=self.transport,
            open_timeout_s=self.open_timeout_s,
            read_timeout_s=self.read_timeout_s,
            preroll_s=self.preroll_s,
            ring_max_bytes=self.ring_max_bytes,
            max_silence_s=self.max_silence_s,
            audio=self.audio,
            analyzeduration_us=self.analyzeduration_us,
            probesize=self.probesize,
        )


@dataclass(frozen=True, slots=True)
class MotionFacts:
    """What motion says about the door now: stored with a grant and with a relock.

    At grant, ``moving`` or a small ``seconds_since_motion`` means someone is at the door;
    at relock, ``not moving`` means the scene went quiet after the door closed.
    """

    enabled: bool
    moving: bool
    seconds_since_motion: float | None  # None: no motion seen since start (or disabled)


@dataclass(frozen=True, slots=True)
class Still:
    """A picture taken but not yet decoded: its keyframe group, and the stream it is of."""

    info: StreamInfo
    packets: tuple[VideoPacket, ...]


@dataclass(frozen=True, slots=True)
class CameraStall:
    """Event: the camera stopped being live (for ``camera.stalled`` and an early relock)."""

    at: str  # RFC 3339 UTC
    health: CameraHealth


StallListener = Callable[[CameraStall], None]
MotionListener = Callable[[MotionEvent], None]
DeletionListener = Callable[[ClipDeleted], None]


class Camera:
    """One camera: health, clips, snapshots, motion; see the module docstring."""

    def __init__(self, config: CameraConfig, source: StreamReader | None = None) -> None:
        self.config = config
        self.source = source or open_source(config.url, config.source_config())
        self._stall_listeners: list[StallListener] = []
        self._motion_listeners: list[MotionListener] = []
        self._deletion_listeners: list[DeletionListener] = []
        self._recordings: set[ClipRecording] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._motion: MotionFeed | None = None
        self._motion_source: StreamReader | None = None
        self._was_live = False
        self._closing = False
        self._live_changed = asyncio.Event()
        self._poked = asyncio.Event()
        # Snapshots decode on a background-priority thread (video.priority).
        self._decoding = background_executor("camera-snapshot")
        self.stalled = asyncio.Event()
        """Set while the camera is not live after having been live; cleared when it is back."""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.config.clip_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
        self.source.add_listener(self._poke)
        self.source.start()
        if self.config.motion is not None:
            motion_source = self.source
            if self.config.motion_url is not None:
                settings = dataclasses.replace(
                    self.config.source_config(),
                    url=self.config.motion_url,
                    audio=False,
                    preroll_s=0.0,
                    ring_max_bytes=4 * 1024 * 1024,
                )
                motion_source = open_source(self.config.motion_url, settings)
                self._motion_source = motion_source
            self._motion = MotionFeed(
                motion_source, self._motion_from_thread, self.config.motion, self.config.motion_fps
            )
            if self._motion_source is not None:
                self._motion_source.start()
            self._motion.start()
        self._watch_task = asyncio.create_task(self._watch(), name="camera-watch")

    async def close(self, stop_timeout_s: float | None = None) -> None:
        """Finish open clips (without post-roll), stop the threads. Idempotent.

        ``stop_timeout_s`` bounds the wait for each reader thread (default: twice the read
        timeout plus 2 s); a reader still blocked on a frozen camera then ends on its own
        (daemon thread), which is what a service shutting down within its budget needs.
        """
        self._closing = True
        for recording in list(self._recordings):
            recording.finish(0.0)
            with contextlib.suppress(Exception):
                await recording.finish(0.0)
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None
        if self._motion is not None:
            await asyncio.to_thread(self._motion.stop)
            self._motion = None
        if self._motion_source is not None:
            await asyncio.to_thread(self._motion_source.stop, stop_timeout_s)
            self._motion_source = None
        await asyncio.to_thread(self.source.stop, stop_timeout_s)
        self._decoding.shutdown(wait=False)

    async def __aenter__(self) -> Camera:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- health and stalls -----------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Fresh frames: connected, and a packet within twice the keyframe interval."""
        return self.source.health().live

    def health(self) -> CameraHealth:
        return self.source.health()

    def add_stall_listener(self, listener: StallListener) -> None:
        """Called on the event loop each time the camera goes from live to not live."""
        self._stall_listeners.append(listener)

    def add_motion_listener(self, listener: MotionListener) -> None:
        """Called on the event loop for each motion.started / motion.stopped."""
        self._motion_listeners.append(listener)

    def add_deletion_listener(self, listener: DeletionListener) -> None:
        """Called (on a worker thread) for each clip deleted by retention: audit it."""
        self._deletion_listeners.append(listener)

    async def wait_live(self, within_s: float) -> bool:
        """Wait until the camera is live; False if it is not within ``within_s`` seconds."""
        try:
            async with asyncio.timeout(within_s):
                while not self.live:
                    self._live_changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._live_changed.wait(), _WATCH_PERIOD_S)
        except TimeoutError:
            return False
        return True

    @property
    def motion_active(self) -> bool:
        return self._motion is not None and self._motion.detector.moving

    @property
    def last_motion_at(self) -> float | None:
        """time.monotonic() of the last picture with motion, None if never (or motion off)."""
        return None if self._motion is None else self._motion.detector.last_motion_at

    def motion_facts(self) -> MotionFacts:
        if self._motion is None:
            return MotionFacts(enabled=False, moving=False, seconds_since_motion=None)
        last = self._motion.detector.last_motion_at
        since = None if last is None else max(0.0, time.monotonic() - last)
        return MotionFacts(True, self._motion.detector.moving, since)

    def _poke(self) -> None:
        # On the reader thread at connect/disconnect: check at once rather than next tick.
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._poked.set)

    async def _watch(self) -> None:
        # Wake when the live window would run out (not on a fixed tick: a 10 Hz poll cost
        # as much CPU as demuxing), or at once when the reader connects or disconnects.
        while True:
            health = self._check()
            if health is not None and health.live and health.stream_age_s is not None:
                wait = max(_MIN_WATCH_S, health.live_window_s - health.stream_age_s + 0.01)
            else:
                wait = _WATCH_PERIOD_S
            self._poked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), wait)

    def _check(self) -> CameraHealth | None:
        if self._closing:
            return None  # stopping the reader on purpose is not a stall
        health = self.source.health()
        if health.live != self._was_live:
            self._live_changed.set()
        if self._was_live and not health.live:
            self.stalled.set()
            stall = CameraStall(datetime.now(UTC).isoformat().replace("+00:00", "Z"), health)
            log.warning("camera stalled: last packet %.1f s ago", health.last_packet_age_s or -1)
            for listener in list(self._stall_listeners):
                try:
                    listener(stall)
                except Exception:
                    log.exception("stall listener failed")
        elif health.live:
            self.stalled.clear()
        self._was_live = health.live
        return health

    def _motion_from_thread(self, event: MotionEvent) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._deliver_motion, event)

    def _deliver_motion(self, event: MotionEvent) -> None:
        if event.kind is MotionEventKind.STARTED:
            log.info("motion started")
        for listener in list(self._motion_listeners):
            try:
                listener(event)
            except Exception:
                log.exception("motion listener failed")

    # -- clips -----------------------------------------------------------------------------

    async def start_clip(self, session_id: str) -> ClipRecording:
        """Start recording now, beginning with the pre-roll. Returns at once.

        It records even when the camera is down, in case it comes back during the visit;
        whether a session may go on without a live camera is the caller's decision (check
        :attr:`live` first). :meth:`finish_clip` raises ``ClipFailed`` if nothing arrived.

        The pre-roll is taken only while the camera is live. After a stall the ring still
        holds the last seconds before it, possibly hours old: filed as this entry's pre-roll
        they would be false evidence of who stood at the door.
        """
        loop = asyncio.get_running_loop()
        path = clip_path(self.config.clip_dir, session_id, datetime.now(UTC), self.config.name)
        preroll, sub = self.source.subscribe(
            with_preroll=self.live, wake_every=CLIP_WAKE_EVERY, audio=True
        )
        recording = ClipRecording(
            session_id,
            path,
            preroll,
            sub,
            self.source.info_for,
            loop,
            self.config.post_roll_s,
            self.config.name,
        )
        self._recordings.add(recording)
        recording.start()
        return recording

    async def finish_clip(
        self, recording: ClipRecording, post_roll_s: float | None = None
    ) -> ClipResult:
        """Record the post-roll, close and hash the file; then apply retention.

        Raises ``ClipFailed`` when no video at all reached the clip.
        """
        try:
            result = await recording.finish(post_roll_s)
        finally:
            self._recordings.discard(recording)
        await asyncio.to_thread(self._apply_retention)
        return result

    def _apply_retention(self) -> None:
        keep = {path for r in self._recordings for path in r.paths}
        enforce_retention(self.config.clip_dir, self.config.clip_budget_bytes, self._deleted, keep)

    def _deleted(self, event: ClipDeleted) -> None:
        for listener in list(self._deletion_listeners):
            listener(event)

    # -- snapshots -------------------------------------------------------------------------

    async def snapshot(self) -> bytes:
        """A JPEG of the newest picture. Raises CameraUnavailable when the camera is not live."""
        return await self.develop(self.capture())

    def capture(self) -> Still:
        """The newest picture's packets, taken now without decoding (on the event loop, at
        once); :meth:`develop` makes the JPEG later. Raises CameraUnavailable when the
        camera is not live, SnapshotFailed before the first keyframe."""
        if not self.live:
            raise CameraUnavailable("the camera is not live: no snapshot")
        group = self.source.latest_group()
        if not group:
            raise SnapshotFailed("no keyframe received yet")
        info = self.source.info_for(group[0].epoch)
        if info is None:
            raise SnapshotFailed("the stream changed while taking the snapshot")
        return Still(info, group)

    async def develop(self, still: Still) -> bytes:
        """The JPEG of a captured picture, decoded at background priority (video.priority)."""

        def work() -> bytes:
            return encode_jpeg(decode_latest(still.info, still.packets))

        return await asyncio.get_running_loop().run_in_executor(self._decoding, work)


def camera_from_url(url_or_path: str, clip_dir: Path, **settings: object) -> Camera:
    """A Camera for an RTSP URL or a local video file (the demo), with default settings."""
    config = CameraConfig(url=url_or_path, clip_dir=clip_dir, **settings)  # type: ignore[arg-type]
    return Camera(config)
