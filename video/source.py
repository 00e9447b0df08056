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
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import av

from groundwork.backoff import stepped_delay
from video.errors import CameraConfigError, CameraConnectFailed
from video.health import CameraHealth, HealthTracker
from video.packet import StreamInfo, VideoPacket
from video.ring import DEFAULT_MAX_BYTES, DEFAULT_PREROLL_S, PrerollRing, RingStats
from video.subscription import DEFAULT_MAX_PACKETS, DELIVERY_LAG_S, PacketSubscription

log = logging.getLogger("threshold.video")

# The reconnect steps are go2rtc's: 1 s five times, then 5 s, 10 s, and 60 s from then on. A
# camera that reboots is back within the fast steps; one that is unplugged is not hammered.
RECONNECT_SCHEDULE_S: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 10.0, 60.0)

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
        self._health = HealthTracker(max_silence_s=config.max_silence_s)
        # Replaced, never mutated: the reader iterates it without copying it per packet.
        self._subs: tuple[PacketSubscription, ...] = ()
        self._listeners: list[Listener] = []
        self._info: StreamInfo | None = None
        self._infos: dict[int, StreamInfo] = {}
        self._epoch = 0
        self._failures = 0
        self.last_error: str | None = None

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
    ) -> tuple[tuple[VideoPacket, ...], PacketSubscription]:
        """A new subscription, plus (if asked) the pre-roll taken atomically with it.

        No packet is missed or repeated between the pre-roll and the first queued packet.
        """
        sub = PacketSubscription(
            max_packets, loop, on_close=self._unsubscribe, wake_every=wake_every
        )
        with self._lock:
            preroll = self._ring.packets() if with_preroll else ()
            self._subs = (*self._subs, sub)
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

    # -- the thread ------------------------------------------------------------------------

    def _open(self) -> Any:
        raise NotImplementedError

    def _packets(self, container: Any, stream: Any) -> Iterator[Any]:
        yield from container.demux(stream)

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
            try:
                self._session()
            except Exception as exc:
                # Whatever PyAV raised, the thread must live on and reconnect.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("camera %s: %s", redact_url(self.config.url), type(exc).__name__)
            with self._lock:
                self._health.on_disconnected()
            self._notify()
            if self._stop.is_set():
                break
            self._failures += 1
            self._stop.wait(stepped_delay(self._failures, self.config.backoff_s))
        with self._lock:
            self._health.on_stopped()
        self._notify()

    def _session(self) -> None:
        container = self._open()
        try:
            streams = container.streams.video
            if not streams:
                raise CameraConnectFailed("the camera offers no video stream")
            stream = streams[0]
            info = self._make_info(stream)
            with self._lock:
                self._info = info
                self._infos = {k: v for k, v in self._infos.items() if k >= info.epoch - 4}
                self._infos[info.epoch] = info
                self._health.on_connected()
            self._notify()
            self._demux(container, stream, info)
            if not self._stop.is_set():
                self.last_error = "end of stream"
        finally:
            container.close()  # this thread opened it and is the only one demuxing it

    def _demux(self, container: Any, stream: Any, info: StreamInfo) -> None:
        batch_size = reader_batch_size(info.nominal_fps)
        # Demuxed packets, with their arrival times, not yet handed over. PyAV gives each one
        # its own reference to the data, valid after later reads and after the close.
        pending: list[tuple[Any, float]] = []
        stopping, monotonic = self._stop.is_set, time.monotonic
        try:
            for packet in self._packets(container, stream):
                if stopping():
                    return
                arrived = monotonic()
                pending.append((packet, arrived))
                if len(pending) >= batch_size or arrived - pending[0][1] >= DELIVERY_LAG_S:
                    self._deliver(pending, info)
                    pending.clear()
        finally:
            # A failed or ended read (a stall, a disconnect) still delivers what arrived.
            if pending:
                self._deliver(pending, info)

    def _deliver(self, pending: list[tuple[Any, float]], info: StreamInfo) -> None:
        copy, publish = self._copy, self._publish
        for packet, arrived in pending:
            video_packet = copy(packet, info, arrived)
            if video_packet is not None:
                publish(video_packet)

    def _make_info(self, stream: Any) -> StreamInfo:
        self._epoch += 1
        # A template stream owned by a container nobody writes or closes: clips copy it
        # from their own threads after this connection's input container is long gone.
        holder = av.open(io.BytesIO(), "w", format="mp4")
        template = holder.add_stream_from_template(stream)
        rate = stream.average_rate or stream.guessed_rate
        return StreamInfo(
            epoch=self._epoch,
            codec=stream.codec_context.name,
            width=int(stream.width),
            height=int(stream.height),
            time_base=Fraction(stream.time_base),
            nominal_fps=float(rate) if rate else None,
            extradata=bytes(stream.codec_context.extradata or b""),
            template=template,
        )

    def _copy(self, packet: Any, info: StreamInfo, arrived_at: float) -> VideoPacket | None:
        dts = packet.dts
        if dts is None or packet.size == 0:
            return None  # a flush packet, or one the demuxer could not time: not recordable
        pts = packet.pts
        return VideoPacket(
            # A read-only view of the demuxed packet's own reference-counted buffer, not a
            # copy: the demuxer hands each packet over for good and never writes to it again,
            # and FFmpeg's padding stays after it for decoders. Copying cost the reader a
            # 33 KB allocation and memcpy per packet at 4 Mb/s (docs/camera.md).
            data=memoryview(packet).toreadonly(),
            pts=dts if pts is None else pts,
            dts=dts,
            # Demuxed packets carry their stream's time base: one Fraction per connection
            # rather than a new one built by PyAV for every packet.
            time_base=info.time_base,
            keyframe=packet.is_keyframe,
            arrived_at=arrived_at,
            epoch=info.epoch,
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
        # Over TCP the socket timeout above bounds every blocking read and write, so PyAV's
        # read timeout is left off: it is an interrupt callback that takes the GIL on every
        # poll and recv (thousands of times a second at 4 Mb/s). Over UDP the demuxer polls
        # its sockets in a loop the socket timeout does not bound the same way, so PyAV's
        # read timeout stays on.
        read_timeout = cfg.read_timeout_s if cfg.transport == "udp" else None
        try:
            return av.open(cfg.url, options=options, timeout=(cfg.open_timeout_s, read_timeout))
        except av.FFmpegError as exc:
            raise CameraConnectFailed(
                f"cannot open {redact_url(cfg.url)}: {type(exc).__name__}"
            ) from exc


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

    def _packets(self, container: Any, stream: Any) -> Iterator[Any]:
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
