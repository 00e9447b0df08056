"""Snapshots: decode the newest picture from the ring and encode it as JPEG with PyAV.

Decoding starts at the newest keyframe (the ring's latest group), so a snapshot costs at most
one group of pictures of decoding and needs no decoder running all the time. The JPEG comes
from PyAV's ``mjpeg`` encoder: no Pillow.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, cast

import av

from video.errors import SnapshotFailed
from video.packet import StreamInfo, VideoPacket


def make_decoder(info: StreamInfo) -> Any:
    decoder = av.CodecContext.create(info.codec, "r")
    if info.extradata:
        decoder.extradata = info.extradata
    return decoder


def to_av_packet(packet: VideoPacket) -> Any:
    # Zero-copy: PyAV wraps any buffer (its stub says bytes), here often a read-only view.
    out = av.Packet(cast(bytes, packet.data))
    out.pts = packet.pts
    out.dts = packet.dts
    out.time_base = packet.time_base
    return out


def decode_latest(info: StreamInfo, group: Sequence[VideoPacket]) -> Any:
    """The last picture of a group that starts at a keyframe, as an ``av.VideoFrame``."""
    if not group or not group[0].keyframe:
        raise SnapshotFailed("no keyframe in the pre-roll yet: the camera is not streaming")
    decoder = make_decoder(info)
    last = None
    try:
        for packet in group:
            for frame in decoder.decode(to_av_packet(packet)):
                last = frame
        for frame in decoder.decode(None):
            last = frame
    except av.FFmpegError as exc:
        if last is None:
            raise SnapshotFailed(f"the picture did not decode: {type(exc).__name__}") from exc
    if last is None:
        raise SnapshotFailed("the decoder produced no picture")
    return last


def encode_jpeg(frame: Any) -> bytes:
    """One JPEG of a decoded frame, via PyAV's mjpeg encoder."""
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width = frame.width
    encoder.height = frame.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 1)
    picture = frame.reformat(format="yuvj420p")
    picture.pts = 0
    packets = list(encoder.encode(picture)) + list(encoder.encode(None))
    if not packets:
        raise SnapshotFailed("the JPEG encoder produced nothing")
    return bytes(packets[0])
