"""The test camera: a GStreamer RTSP server serving a live H.264 test pattern.

Run with the system Python (``/usr/bin/python3``), because ``gi`` comes from Debian's
``python3-gi`` and is not in the project's virtualenv. Needs the Debian packages
``gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-ugly``.

It listens on 127.0.0.1 only, on the given port (0 picks a free one), prints one line
``URL rtsp://127.0.0.1:PORT/cam`` once it accepts connections, and exits by itself when its
stdin closes or its parent process dies, so a crashed test run never leaves it behind.
Freezing it with SIGSTOP simulates a camera whose stream stalls without closing the socket.
"""

from __future__ import annotations

import argparse
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PARENT_POLL_MS = 200


def pipeline(args: argparse.Namespace) -> str:
    # is-live makes the source pace itself like a real camera; zerolatency removes
    # B-frames and lookahead, as cameras do; config-interval=1 repeats SPS/PPS in band.
    return (
        f"( videotestsrc is-live=true pattern={args.pattern} "
        f"! video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast bitrate={args.bitrate_kbps} "
        f"key-int-max={args.keyint} "
        "! rtph264pay config-interval=1 name=pay0 pt=96 )"
    )


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
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(args))
    # One pipeline shared by every client, like a camera serving several viewers.
    factory.set_shared(True)
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
    print(f"URL rtsp://127.0.0.1:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
