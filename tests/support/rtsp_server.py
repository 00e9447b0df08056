"""The test camera: a GStreamer RTSP server serving a live test pattern, as real cameras do.

Run with the system Python (``/usr/bin/python3``), because ``gi`` comes from Debian's
``python3-gi`` and is not in the project's virtualenv. Needs the Debian packages
``gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad`` (the last for H.265 and AAC).

It listens on 127.0.0.1 only, on the given port (0 picks a free one), prints one line
``URL rtsp://127.0.0.1:PORT/cam`` once it accepts connections, and exits by itself when its
stdin closes or its parent process dies, so a crashed test run never leaves it behind.
Freezing it with SIGSTOP simulates a camera whose stream stalls without closing the socket.

What real cameras send, on demand: H.265 (``--codec h265``), B-frames (``--bframes``), an
audio track (``--audio aac|pcma|pcmu``), timestamps that jump (``--jump-at S --jump-by S``:
from S seconds of stream on, every video RTP timestamp is shifted by the signed amount, like
a camera whose clock was reset; see :class:`JumpingProxy`), a new resolution mid-stream
(``--resize-at S --resize-to WxH``), UDP only (``--udp-only``: a TCP transport request is
answered 461), and a user name and password (``--user``/``--password``: basic
authentication).

Like a real camera, it encodes from start-up whether or not anyone watches: an in-process
viewer (:class:`StandingViewer`) holds the one shared pipeline open, and the URL is printed
only once that viewer has received video. This is also what keeps GStreamer 1.22's RTSP
server alive: when several clients PLAY a shared media that is still starting, one of them
can find a stream with a transport but no segment yet, and ``gst_rtsp_media_get_rates``
aborts the whole process on a ``g_assert`` (seen with four cameras connecting at once, one
run in three). A media that is already playing has its segment, so clients joining it never
hit that window. Servers whose clock jumps or whose resolution changes start cold instead,
because those timers count from their one client's connection; so do servers with audio,
whose tests film from a stream's first seconds: a client that joins a running stream with
audio had its clip's audio run about a second longer than the video in 2 runs of 37 (0 of 8
from a cold start), see docs/camera.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

PARENT_POLL_MS = 200


def video_encoder(args: argparse.Namespace) -> str:
    # is-live makes the source pace itself like a real camera; zerolatency removes
    # B-frames and lookahead, as most cameras do; config-interval=1 repeats the parameter
    # sets in band. --bframes keeps lookahead and B-frames, as some cameras do.
    tune = "" if args.bframes else "tune=zerolatency "
    bframes = f"bframes={args.bframes} b-adapt=false " if args.bframes else ""
    if args.codec == "h265":
        return (
            f"x265enc {tune}speed-preset=ultrafast bitrate={args.bitrate_kbps} "
            f"key-int-max={args.keyint} name=enc "
            "! h265parse ! rtph265pay config-interval=1 name=pay0 pt=96"
        )
    preset = "superfast" if args.bframes else "ultrafast"  # ultrafast turns B-frames off
    return (
        f"x264enc {tune}{bframes}speed-preset={preset} bitrate={args.bitrate_kbps} "
        f"key-int-max={args.keyint} name=enc "
        # The payloader would settle for baseline, which has no B-frames.
        f"{'! video/x-h264,profile=main ' if args.bframes else ''}"
        "! rtph264pay config-interval=1 name=pay0 pt=96"
    )


def audio_branch(args: argparse.Namespace) -> str:
    source = "audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=8000,channels=1 "
    if args.audio == "aac":
        return (
            "audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=16000,channels=1 "
            "! audioconvert ! voaacenc bitrate=32000 ! aacparse "
            "! rtpmp4gpay name=pay1 pt=97"
        )
    if args.audio == "pcma":
        return source + "! alawenc ! rtppcmapay name=pay1 pt=8"
    if args.audio == "pcmu":
        return source + "! mulawenc ! rtppcmupay name=pay1 pt=0"
    return ""


def pipeline(args: argparse.Namespace) -> str:
    size = f"width={args.width},height={args.height}"
    scale = "! videoscale ! capsfilter name=res " if args.resize_at else ""
    video = (
        f"videotestsrc is-live=true pattern={args.pattern} "
        f"! video/x-raw,{size},framerate={args.fps}/1 {scale}! {video_encoder(args)}"
    )
    audio = audio_branch(args)
    return f"( {video} {audio} )"


class JumpingProxy:
    """A camera whose clock jumps: relays RTSP over TCP to the real server and, from
    ``jump_at`` seconds after the first video packet on, adds ``jump_by`` seconds to every
    video RTP timestamp (interleaved channel 0), exactly as a camera whose clock was reset
    sends them: the packets keep coming at the same pace, only their timestamps jump.

    (GStreamer cannot do it itself: its sinks pace buffers by their timestamps, so shifted
    timestamps change when packets are sent, not what they say.)
    """

    def __init__(self, upstream_port: int, jump_at: float, jump_by: float) -> None:
        self.upstream_port = upstream_port
        self.jump_at = jump_at
        self.jump_ticks = round(jump_by * 90_000)  # H.264/H.265 over RTP: a 90 kHz clock
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def serve(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def _relay(self, upstream: socket.socket, client: socket.socket) -> None:
        reader = upstream.makefile("rb")
        first: float | None = None
        with contextlib.suppress(OSError, ValueError):
            while True:
                marker = reader.read(1)
                if not marker:
                    break
                if marker != b"$":  # an RTSP response: its head, then its body
                    head = marker + reader.readline()
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            return
                        head += line
                    length = 0
                    for line in head.split(b"\r\n"):
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    client.sendall(head + reader.read(length))
                    continue
                frame_head = reader.read(3)
                channel, size = frame_head[0], int.from_bytes(frame_head[1:3], "big")
                packet = bytearray(reader.read(size))
                if channel == 0 and len(packet) >= 12:
                    now = time.monotonic()
                    first = now if first is None else first
                    if now - first >= self.jump_at:
                        stamp = int.from_bytes(packet[4:8], "big")
                        packet[4:8] = ((stamp + self.jump_ticks) % 2**32).to_bytes(4, "big")
                client.sendall(b"$" + frame_head + bytes(packet))


def resize_later(media: Any, args: argparse.Namespace) -> None:
    capsfilter = media.get_element().get_by_name("res")
    width, height = (int(v) for v in args.resize_to.split("x"))
    first = f"video/x-raw,width={args.width},height={args.height}"
    capsfilter.set_property("caps", Gst.Caps.from_string(first))

    def resize() -> bool:
        capsfilter.set_property(
            "caps", Gst.Caps.from_string(f"video/x-raw,width={width},height={height}")
        )
        return False

    GLib.timeout_add(int(args.resize_at * 1000), resize)


#: How long the standing viewer may take to receive the first video (x264 at 1080p on a
#: loaded machine is the slow case).
STANDING_VIEWER_S = 20.0


class StandingViewer:
    """An RTSP client inside the server process that keeps the shared pipeline playing."""

    def __init__(self, url: str, args: argparse.Namespace, on_video: Any) -> None:
        self.pipeline = Gst.Pipeline.new("standing-viewer")
        source = Gst.ElementFactory.make("rtspsrc")
        source.set_property("location", url)
        source.set_property("latency", 0)
        lower = GstRtsp.RTSPLowerTrans.UDP if args.udp_only else GstRtsp.RTSPLowerTrans.TCP
        source.set_property("protocols", lower)
        if args.user:
            source.set_property("user-id", args.user)
            source.set_property("user-pw", args.password)
        source.connect("pad-added", self._pad_added)
        self.pipeline.add(source)
        self.on_video = on_video
        self.seen = threading.Event()

    def start(self) -> None:
        self.pipeline.set_state(Gst.State.PLAYING)

    def _pad_added(self, _source: Any, pad: Any) -> None:
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        self.pipeline.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))
        pad.add_probe(Gst.PadProbeType.BUFFER, self._buffer)

    def _buffer(self, _pad: Any, _info: Any) -> Any:
        if not self.seen.is_set():
            self.seen.set()
            GLib.idle_add(self.on_video)
        return Gst.PadProbeReturn.REMOVE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port, 0 for a free one")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--bitrate-kbps", type=int, default=500)
    parser.add_argument("--keyint", type=int, default=15, help="frames between keyframes")
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern")
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--codec", choices=("h264", "h265"), default="h264")
    parser.add_argument("--bframes", type=int, default=0)
    parser.add_argument("--audio", choices=("none", "aac", "pcma", "pcmu"), default="none")
    parser.add_argument("--jump-at", type=float, default=0.0, help="seconds of stream")
    parser.add_argument("--jump-by", type=float, default=0.0, help="signed seconds")
    parser.add_argument("--resize-at", type=float, default=0.0, help="seconds after start")
    parser.add_argument("--resize-to", default="", help="WIDTHxHEIGHT")
    parser.add_argument("--udp-only", action="store_true")
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(args))
    # One pipeline shared by every client, like a camera serving several viewers.
    factory.set_shared(True)
    if args.udp_only:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
    if args.resize_at:
        factory.connect("media-configure", lambda _factory, media: resize_later(media, args))
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        basic = GstRtspServer.RTSPAuth.make_basic(args.user, args.password)
        auth.add_basic(basic, token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role(
            "viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True
        )
        permissions.add_permission_for_role(
            "viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True
        )
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on 127.0.0.1:{args.port}", flush=True)
        return 1

    loop = GLib.MainLoop()
    parent = os.getppid()

    def parent_gone() -> bool:
        if os.getppid() != parent:
            loop.quit()
            return False
        return True

    def stdin_event(_fd: int, _condition: GLib.IOCondition) -> bool:
        # Readable means either data (ignored) or EOF; EOF means the parent let go of us.
        if not os.read(sys.stdin.fileno(), 4096):
            loop.quit()
            return False
        return True

    GLib.timeout_add(PARENT_POLL_MS, parent_gone)
    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, stdin_event)
    port = server.get_bound_port()
    if args.jump_by:
        proxy = JumpingProxy(port, args.jump_at, args.jump_by)
        proxy.serve()
        port = proxy.port
    url = f"rtsp://127.0.0.1:{port}{args.path}"

    def announce() -> bool:
        print(f"URL {url}", flush=True)
        return False

    viewer: StandingViewer | None = None
    if args.jump_by or args.resize_at or args.audio != "none":
        announce()
    else:
        viewer = StandingViewer(url, args, announce)  # no relay in front: the server's port
        viewer.start()

        def no_video() -> bool:
            if not viewer.seen.is_set():
                print(f"ERROR no video from the pipeline in {STANDING_VIEWER_S:.0f} s", flush=True)
                loop.quit()
            return False

        GLib.timeout_add(int(STANDING_VIEWER_S * 1000), no_video)
    loop.run()
    if viewer is not None:
        viewer.pipeline.set_state(Gst.State.NULL)
    return 0 if viewer is None or viewer.seen.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
