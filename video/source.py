"""Camera ingest: one reader thread per camera, demuxing with PyAV, never blocking on anyone.

The thread owns its PyAV input container from open to close: containers are never closed
from another thread while demuxing, which crashes the process. Stopping is a flag the
thread checks between packets; a blocked read ends within the read timeout, because the
RTSP ``timeout`` option (microseconds, the socket timeout) bounds every socket wait, and
PyAV's open timeout bounds connecting (PyAV's read timeout too, over UDP only: see
:meth:`RtspSource._open`).

The end of the demux loop means the camera went away (a dying RTSP server simply ends the
stream), so it is handled exactly like an error: reconnect after the next step of
:data:`RECONNECT_SCHEDULE_S` (:func:`groundwork.backoff.stepped_delay`).

Each packet is copied into a :class:`~video.packet.VideoPacket`, pushed into the pre-roll
ring and offered to every subscriber, all without blocking. :class:`FileSource` reads a
local video file in real time and loops it, through the same interface, for the demo and
for tests that need no RTSP server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import io
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import av

from groundwork.backoff import stepped_delay
from video.bitstream import parameter_sets
from video.errors import (
    CameraAuthFailed,
    CameraConfigError,
    CameraConnectFailed,
    CameraError,
    CameraTransportRefused,
)
from video.health import CameraHealth, HealthTracker
from video.packet import AudioInfo, StreamInfo, TimelineCause, VideoPacket
from video.ring import DEFAULT_MAX_BYTES, DEFAULT_PREROLL_S, PrerollRing, RingStats
from video.subscription import DEFAULT_MAX_PACKETS, DELIVERY_LAG_S, PacketSubscription
from video.timeline import TimelineWatch

log = logging.getLogger("threshold.video")

# The reconnect steps are go2rtc's: 1 s five times, then 5 s, 10 s, and 60 s from then on. A
# camera that reboots is back within the fast steps; one that is unplugged is not hammered.
RECONNECT_SCHEDULE_S: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 10.0, 60.0)
# Audio codecs an MP4 clip carries as they are; any other audio (G.711 A-law and mu-law, as
# most cameras send) is transcoded to AAC by the clip writer.
REMUXED_AUDIO = frozenset({"aac"})
TRANSCODED_AUDIO = frozenset({"pcm_alaw", "pcm_mulaw"})
# Audio kept for a clip's pre-roll: the ring's span and one keyframe interval more.
_AUDIO_RING_MAX = 2048

_libav_logging_lock = threading.Lock()
_libav_logging_silenced = False


def silence_libav_logging() -> None:
    """Keep FFmpeg's log callback out of Python.

    PyAV can route FFmpeg's logs into Python's logging, but that callback takes the GIL from
    FFmpeg's threads and can deadlock against a thread that holds a logging lock. So the
    level stays None (PyAV's default, set here explicitly in case anything changed it): FFmpeg's
    messages are discarded, and errors still surface as exceptions.
    """
    global _libav_logging_silenced
    with _libav_logging_lock:
        if not _libav_logging_silenced:
            av.logging.set_level(None)
            _libav_logging_silenced = True


def redact_url(url: str) -> str:
    """The URL without user name and password, fit for logs and audit entries."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """How to reach and read one camera.

    ``read_timeout_s`` bounds how long one read may block: a stall is noticed by the
    reader within about twice that, and earlier by the health window.
    """

    url: str
    transport: str = "tcp"
    open_timeout_s: float = 5.0
    read_timeout_s: float = 2.0
    analyzeduration_us: int = 500_000
    probesize: int = 262_144
    preroll_s: float = DEFAULT_PREROLL_S
    ring_max_bytes: int = DEFAULT_MAX_BYTES
    max_silence_s: float = 4.0
    backoff_s: tuple[float, ...] = RECONNECT_SCHEDULE_S
    #: Record the camera's audio track (where the law allows it): see docs/camera.md.
    audio: bool = True

    def __post_init__(self) -> None:
        if self.transport not in ("tcp", "udp"):
            raise CameraConfigError("camera transport must be 'tcp' or 'udp'")
        if self.open_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise CameraConfigError("camera timeouts must be positive")
        if not self.backoff_s or min(self.backoff_s) < 0:
            raise CameraConfigError("the camera backoff schedule must be non-empty, >= 0")


Listener = Callable[[], None]

READER_BATCH_MAX = 4


def reader_batch_size(nominal_fps: float | None) -> int:
    """How many packets the reader hands over at once: as many as arrive in DELIVERY_LAG_S.

    The reader's Python runs once per packet after a wait for the network, with cold CPU
    caches, and costs there about ten times what it costs warm (docs/camera.md): handing
    packets over in small batches cut the reader's CPU by an eighth. 15 fps gives 3 (at most
    133 ms late); 5 fps or an unknown rate gives 1.
    """
    if not nominal_fps or nominal_fps <= 0:
        return 1
    return max(1, min(READER_BATCH_MAX, int(nominal_fps * DELIVERY_LAG_S)))


class StreamReader:
    """The common reader thread. Subclasses say how to open the container and pace packets."""

    def __init__(self, config: SourceConfig) -> None:
        silence_libav_logging()
        self.config = config
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ring = PrerollRing(config.preroll_s, config.ring_max_bytes)
        self._audio_ring: deque[VideoPacket] = deque(maxlen=_AUDIO_RING_MAX)
        self._health = HealthTracker(max_silence_s=config.max_silence_s)
        # Replaced, never mutated: the reader iterates them without copying per packet.
        self._subs: tuple[PacketSubscription, ...] = ()
        self._audio_subs: tuple[PacketSubscription, ...] = ()
        self._listeners: list[Listener] = []
        self._info: StreamInfo | None = None
        self._infos: dict[int, StreamInfo] = {}
        self._epoch = 0
        self._failures = 0
        # The reader thread's own: the timeline packets are stamped with, its jump watch, and
        # the SPS of the parameters in force (a new one on a keyframe may be a new resolution).
        self._live: StreamInfo | None = None
        self._timeline = TimelineWatch()
        self._sps: bytes | None = None
        self.last_error: str | None = None
        #: False: failures are not logged (a one-off check reports them itself, once).
        self.log_failures = True
        #: The last failure that retrying cannot mend (wrong credentials, transport refused):
        #: the reader then waits the longest step of its schedule, and a check stops at once.
        self.final_error: CameraError | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(
            target=self._run, name=f"camera-reader {redact_url(self.config.url)}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the thread to finish and wait for it; True if it has ended."""
        self._stop.set()
        if self._thread is None:
            return True
        limit = timeout if timeout is not None else self.config.read_timeout_s * 2 + 2
        self._thread.join(limit)
        ended = not self._thread.is_alive()
        with self._lock:
            subs = self._subs
        for sub in subs:
            sub.close()
        return ended

    # -- what consumers use ----------------------------------------------------------------

    def health(self, now: float | None = None) -> CameraHealth:
        with self._lock:
            return self._health.snapshot(time.monotonic() if now is None else now)

    @property
    def info(self) -> StreamInfo | None:
        with self._lock:
            return self._info

    @property
    def consecutive_failures(self) -> int:
        """Failed attempts since the last packet: the step of the backoff schedule."""
        return self._failures

    def info_for(self, epoch: int) -> StreamInfo | None:
        with self._lock:
            return self._infos.get(epoch)

    def add_listener(self, listener: Listener) -> None:
        """Called on the reader thread at each connect and disconnect: keep it quick."""
        with self._lock:
            self._listeners.append(listener)

    def subscribe(
        self,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        max_packets: int = DEFAULT_MAX_PACKETS,
        with_preroll: bool = False,
        wake_every: int = 1,
        audio: bool = False,
    ) -> tuple[tuple[VideoPacket, ...], PacketSubscription]:
        """A new subscription, plus (if asked) the pre-roll taken atomically with it.

        No packet is missed or repeated between the pre-roll and the first queued packet.
        With ``audio``, audio packets come too (the pre-roll's in arrival order with the
        video's, from its first keyframe's arrival on); without, only video.
        """
        sub = PacketSubscription(
            max_packets, loop, on_close=self._unsubscribe, wake_every=wake_every
        )
        with self._lock:
            preroll = self._ring.packets() if with_preroll else ()
            if audio and preroll:
                preroll = _with_audio(preroll, self._audio_ring)
            self._subs = (*self._subs, sub)
            if audio:
                self._audio_subs = (*self._audio_subs, sub)
        return preroll, sub

    def latest_group(self) -> tuple[VideoPacket, ...]:
        with self._lock:
            return self._ring.latest_group()

    def ring_stats(self) -> RingStats:
        with self._lock:
            return self._ring.stats()

    def _unsubscribe(self, sub: PacketSubscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)
            self._audio_subs = tuple(s for s in self._audio_subs if s is not sub)

    # -- the thread ------------------------------------------------------------------------

    def _open(self) -> Any:
        raise NotImplementedError

    def _packets(self, container: Any, streams: tuple[Any, ...]) -> Iterator[Any]:
        yield from container.demux(*streams)

    def _audio_stream(self, container: Any) -> Any:
        """The audio track to record, or None (audio off, none sent, or a codec we cannot
        carry)."""
        if not self.config.audio:
            return None
        for stream in container.streams.audio:
            name = stream.codec_context.name
            if name in REMUXED_AUDIO or name in TRANSCODED_AUDIO:
                return stream
        return None

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:
                log.exception("camera listener failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            final = False
            try:
                self._session()
            except CameraError as exc:
                self.last_error = exc.message
                final = isinstance(exc, (CameraAuthFailed, CameraTransportRefused))
                if final:
                    self.final_error = exc
                    # Cameras lock out a user after a few failed logins: never hammer one.
                    self._failures = max(self._failures, len(self.config.backoff_s) - 1)
                self._report(exc, final)
            except Exception as exc:
                # Whatever PyAV raised, the thread must live on and reconnect.
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.log_failures:
                    log.warning("camera %s: %s", redact_url(self.config.url), type(exc).__name__)
            with self._lock:
                self._health.on_disconnected()
            if not self._stop.is_set():
                # Counted before the listeners hear of the failure, so that what they read
                # (consecutive_failures, the next step of the schedule) is already this one's.
                self._failures += 1
            self._notify()
            if self._stop.is_set():
                break
            self._stop.wait(stepped_delay(self._failures, self.config.backoff_s))
        with self._lock:
            self._health.on_stopped()
        self._notify()

    def _report(self, exc: CameraError, final: bool) -> None:
        if not self.log_failures:
            return
        where = redact_url(self.config.url)
        if final:
            wait = stepped_delay(self._failures + 1, self.config.backoff_s)
            log.error("camera %s: %s; next attempt in %g s", where, exc.message, wait)
        else:
            log.warning("camera %s: %s", where, exc.message)

    def _session(self) -> None:
        container = self._open()
        try:
            streams = container.streams.video
            if not streams:
                raise CameraConnectFailed("the camera offers no video stream")
            stream = streams[0]
            audio = self._audio_stream(container)
            info = self._make_info(stream, audio)
            self._live = info
            self._timeline.reset()
            known = parameter_sets(info.extradata, info.codec)
            self._sps = None if known is None else known.sps
            with self._lock:
                self._remember(info)
                self._health.on_connected()
            self.final_error = None
            self._notify()
            self._demux(container, stream, audio)
            if not self._stop.is_set():
                self.last_error = "end of stream"
        finally:
            container.close()  # this thread opened it and is the only one demuxing it

    def _remember(self, info: StreamInfo) -> None:
        # Under the lock. A few past timelines stay known: clips still writing their packets.
        self._info = info
        self._infos = {k: v for k, v in self._infos.items() if k >= info.epoch - 8}
        self._infos[info.epoch] = info

    def _demux(self, container: Any, stream: Any, audio: Any) -> None:
        info = self._live
        assert info is not None
        audio_rate = 0.0
        if audio is not None:
            # AAC frames are 1024 samples; cameras' G.711 packets are 20-40 ms.
            audio_rate = float(audio.codec_context.sample_rate or 8000) / 1024
        batch_size = reader_batch_size((info.nominal_fps or 0) + audio_rate or None)
        streams = (stream,) if audio is None else (stream, audio)
        audio_index = -1 if audio is None else audio.index
        # Demuxed packets, with their arrival times, not yet handed over. PyAV gives each one
        # its own reference to the data, valid after later reads and after the close.
        pending: list[tuple[Any, float]] = []
        stopping, monotonic = self._stop.is_set, time.monotonic
        try:
            for packet in self._packets(container, streams):
                if stopping():
                    return
                arrived = monotonic()
                pending.append((packet, arrived))
                if len(pending) >= batch_size or arrived - pending[0][1] >= DELIVERY_LAG_S:
                    self._deliver(pending, audio_index)
                    pending.clear()
        finally:
            # A failed or ended read (a stall, a disconnect) still delivers what arrived.
            if pending:
                self._deliver(pending, audio_index)

    def _deliver(self, pending: list[tuple[Any, float]], audio_index: int) -> None:
        copy, publish = self._copy, self._publish
        if audio_index < 0:
            for packet, arrived in pending:
                video_packet = copy(packet, arrived)
                if video_packet is not None:
                    publish(video_packet)
            return
        for packet, arrived in pending:
            if packet.stream_index == audio_index:
                audio_packet = self._copy_audio(packet, arrived)
                if audio_packet is not None:
                    self._publish_audio(audio_packet)
                continue
            video_packet = copy(packet, arrived)
            if video_packet is not None:
                publish(video_packet)

    def _make_info(self, stream: Any, audio: Any = None) -> StreamInfo:
        self._epoch += 1
        # A template stream owned by a container nobody writes or closes: clips copy it
        # from their own threads after this connection's input container is long gone.
        holder = av.open(io.BytesIO(), "w", format="mp4")
        template = holder.add_stream_from_template(stream)
        rate = stream.average_rate or stream.guessed_rate
        audio_info: AudioInfo | None = None
        if audio is not None:
            ctx = audio.codec_context
            audio_info = AudioInfo(
                codec=ctx.name,
                sample_rate=int(ctx.sample_rate or 8000),
                channels=int(ctx.channels or 1),
                time_base=Fraction(audio.time_base),
                template=(
                    holder.add_stream_from_template(audio) if ctx.name in REMUXED_AUDIO else None
                ),
            )
        return StreamInfo(
            epoch=self._epoch,
            codec=stream.codec_context.name,
            width=int(stream.width),
            height=int(stream.height),
            time_base=Fraction(stream.time_base),
            nominal_fps=float(rate) if rate else None,
            extradata=bytes(stream.codec_context.extradata or b""),
            template=template,
            audio=audio_info,
        )

    def _new_timeline(self, info: StreamInfo, cause: TimelineCause, **changes: Any) -> StreamInfo:
        """Start a new epoch on this connection (a jump, or new codec parameters)."""
        self._epoch += 1
        new = dataclasses.replace(info, epoch=self._epoch, cause=cause, **changes)
        self._live = new
        with self._lock:
            self._remember(new)
            if cause is not TimelineCause.NEW_PARAMETERS:
                self._health.on_discontinuity()
        return new

    def _copy(self, packet: Any, arrived_at: float) -> VideoPacket | None:
        dts = packet.dts
        if dts is None or packet.size == 0:
            return None  # a flush packet, or one the demuxer could not time: not recordable
        info = self._live
        assert info is not None
        time_base = info.time_base
        keyframe = packet.is_keyframe
        # A read-only view of the demuxed packet's own reference-counted buffer, not a copy:
        # the demuxer hands each packet over for good and never writes to it again, and
        # FFmpeg's padding stays after it for decoders. Copying cost the reader a 33 KB
        # allocation and memcpy per packet at 4 Mb/s (docs/camera.md).
        data = memoryview(packet).toreadonly()
        jump = self._timeline.check(dts * time_base.numerator / time_base.denominator, arrived_at)
        if jump is not None:
            cause = TimelineCause.JUMPED_BACK if jump.backward else TimelineCause.JUMPED_FORWARD
            log.warning(
                "camera %s: timestamps jumped %+.1f s: a new timeline",
                redact_url(self.config.url),
                jump.by_s,
            )
            info = self._new_timeline(info, cause, jump_s=jump.by_s)
        if keyframe:
            info = self._check_parameters(info, data)
        pts = packet.pts
        return VideoPacket(
            data=data,
            pts=dts if pts is None else pts,
            dts=dts,
            # Demuxed packets carry their stream's time base: one Fraction per connection
            # rather than a new one built by PyAV for every packet.
            time_base=time_base,
            keyframe=keyframe,
            arrived_at=arrived_at,
            epoch=info.epoch,
        )

    def _check_parameters(self, info: StreamInfo, data: memoryview) -> StreamInfo:
        """A keyframe: did the camera send new parameter sets (a new resolution)?"""
        sets = parameter_sets(data, info.codec)
        if sets is None or sets.sps == self._sps:
            return info
        first = self._sps is None
        self._sps = sets.sps
        probed = _probe_parameters(bytes(data), info.codec)
        if probed is None:
            return info
        width, height, template = probed
        if first and (width, height) == (info.width, info.height):
            return info  # the SDP just said nothing of them: the same stream
        if (width, height) == (info.width, info.height):
            return info  # new settings, same picture size: players follow in-band sets
        log.warning(
            "camera %s: the picture changed from %dx%d to %dx%d: a new clip part",
            redact_url(self.config.url),
            info.width,
            info.height,
            width,
            height,
        )
        return self._new_timeline(
            info,
            TimelineCause.NEW_PARAMETERS,
            width=width,
            height=height,
            extradata=sets.annexb,
            template=template,
            jump_s=0.0,
        )

    def _copy_audio(self, packet: Any, arrived_at: float) -> VideoPacket | None:
        dts = packet.dts
        info = self._live
        if dts is None or packet.size == 0 or info is None or info.audio is None:
            return None
        pts = packet.pts
        return VideoPacket(
            data=memoryview(packet).toreadonly(),
            pts=dts if pts is None else pts,
            dts=dts,
            time_base=info.audio.time_base,
            keyframe=True,
            arrived_at=arrived_at,
            epoch=info.epoch,
            audio=True,
        )

    def _publish(self, packet: VideoPacket) -> None:
        dts_s = packet.dts_s
        with self._lock:
            self._ring.push(packet, dts_s)
            self._health.on_packet(packet.arrived_at, dts_s, packet.keyframe)
            subs = self._subs
        self._failures = 0
        if not subs:
            return
        dropped = 0
        for sub in subs:
            if not sub.offer(packet) and not sub.closed:
                dropped += 1
        if dropped:
            with self._lock:
                self._health.on_dropped(dropped)

    def _publish_audio(self, packet: VideoPacket) -> None:
        with self._lock:
            self._audio_ring.append(packet)
            subs = self._audio_subs
        for sub in subs:
            sub.offer(packet)


def _with_audio(
    video: tuple[VideoPacket, ...], audio: deque[VideoPacket]
) -> tuple[VideoPacket, ...]:
    """The pre-roll's video with the audio that arrived from its first packet on, merged in
    arrival order."""
    since = video[0].arrived_at
    kept = [p for p in audio if p.arrived_at >= since]
    if not kept:
        return video
    return tuple(sorted((*video, *kept), key=lambda p: p.arrived_at))


def _probe_parameters(keyframe: bytes, codec: str) -> tuple[int, int, Any] | None:
    """The picture size a keyframe (with its parameter sets) has, and a template stream for
    it, asked of FFmpeg's raw demuxer (well under a millisecond at 320x240; once per change)."""
    try:
        with av.open(io.BytesIO(keyframe), format=codec) as probe:
            stream = probe.streams.video[0]
            width, height = int(stream.width), int(stream.height)
            if not width or not height:
                return None
            holder = av.open(io.BytesIO(), "w", format="mp4")
            return width, height, holder.add_stream_from_template(stream)
    except (av.FFmpegError, IndexError):
        return None


def connect_error(url: str, transport: str, exc: BaseException) -> CameraError:
    """What a failed RTSP open means, in words an owner can act on."""
    where = redact_url(url)
    if isinstance(exc, (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError)):
        return CameraAuthFailed(
            f"{where} refused the user name and password (check them in the camera URL)"
        )
    if transport == "tcp" and getattr(exc, "errno", None) == errno.EPROTONOSUPPORT:
        return CameraTransportRefused(
            f"{where} refused RTSP over TCP (461): this camera offers only UDP; set transport = udp"
        )
    return CameraConnectFailed(f"cannot open {where}: {type(exc).__name__}")


class RtspSource(StreamReader):
    """An RTSP camera. TCP by default: UDP loses packets on Wi-Fi and through NAT."""

    def _open(self) -> Any:
        cfg = self.config
        options = {
            "rtsp_transport": cfg.transport,
            # The RTSP demuxer's socket timeout, in microseconds.
            "timeout": str(int(cfg.read_timeout_s * 1_000_000)),
            "analyzeduration": str(cfg.analyzeduration_us),
            "probesize": str(cfg.probesize),
            "fflags": "nobuffer",
        }
        if not cfg.audio:
            # The audio track is not even set up: it never leaves the camera.
            options["allowed_media_types"] = "video"
        # Over TCP the socket timeout above bounds every blocking read and write, so PyAV's
        # read timeout is left off: it is an interrupt callback that takes the GIL on every
        # poll and recv (thousands of times a second at 4 Mb/s). Over UDP the demuxer polls
        # its sockets in a loop the socket timeout does not bound the same way, so PyAV's
        # read timeout stays on.
        read_timeout = cfg.read_timeout_s if cfg.transport == "udp" else None
        try:
            return av.open(cfg.url, options=options, timeout=(cfg.open_timeout_s, read_timeout))
        except av.FFmpegError as exc:
            raise connect_error(cfg.url, cfg.transport, exc) from exc


class FileSource(StreamReader):
    """A local video file played in real time and looped, with one continuous timeline."""

    def __init__(self, path: Path | str, config: SourceConfig | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CameraConfigError(f"no such video file: {self.path}")
        super().__init__(config or SourceConfig(url=str(self.path)))

    def _open(self) -> Any:
        try:
            return av.open(str(self.path), timeout=(self.config.open_timeout_s, None))
        except av.FFmpegError as exc:
            raise CameraConnectFailed(f"cannot open {self.path}: {type(exc).__name__}") from exc

    def _audio_stream(self, container: Any) -> Any:
        return None  # the demo's test video has none; its loop re-times video only

    def _packets(self, container: Any, streams: tuple[Any, ...]) -> Iterator[Any]:
        stream = streams[0]
        offset = 0  # added to every timestamp so each loop continues the timeline
        next_dts = 0
        started = time.monotonic()
        while not self._stop.is_set():
            first_dts: int | None = None
            count = 0
            for packet in container.demux(stream):
                if packet.dts is None or packet.size == 0:
                    continue
                if first_dts is None:
                    first_dts = packet.dts
                    offset = next_dts - first_dts
                dts = packet.dts + offset
                due = started + float(dts * packet.time_base)
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                frame_ticks = packet.duration or 1
                next_dts = dts + frame_ticks
                packet.dts = dts
                packet.pts = (packet.pts if packet.pts is not None else packet.dts) + offset
                count += 1
                yield packet
            if count == 0:
                return  # an empty file would spin
            container.seek(0, stream=stream)


def open_source(url_or_path: str, config: SourceConfig | None = None) -> StreamReader:
    """An :class:`RtspSource` for an ``rtsp://`` or ``rtsps://`` URL, else a file source."""
    scheme = urlsplit(url_or_path).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return RtspSource(config or SourceConfig(url=url_or_path))
    if scheme not in ("", "file"):
        raise CameraConfigError(f"unsupported camera URL scheme {scheme!r}")
    path = urlsplit(url_or_path).path if scheme == "file" else url_or_path
    return FileSource(path, config)
