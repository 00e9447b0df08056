"""Parameter sets in an encoded access unit: how a new resolution mid-stream is noticed. Pure.

An RTSP camera sends H.264 and H.265 in Annex B form (NAL units after ``00 00 01`` start
codes), and most repeat their parameter sets (VPS, SPS, PPS) in band before each keyframe.
A camera that changes resolution mid-stream must send a new SPS there, or no decoder could
follow it; so comparing each keyframe's SPS with the last one is enough to notice the change,
without parsing the SPS itself (the reader asks FFmpeg for the new dimensions, once).
"""

from __future__ import annotations

from dataclasses import dataclass

# Parameter sets come first in an access unit; they are small (tens of bytes, a few hundred
# with scaling lists). Only this much of a keyframe is looked at.
SCAN_BYTES = 4096

_H264_VCL = range(1, 6)
_H264_SPS, _H264_PPS = 7, 8
_HEVC_VCL = range(0, 32)
_HEVC_VPS, _HEVC_SPS, _HEVC_PPS = 32, 33, 34


@dataclass(frozen=True, slots=True)
class ParameterSets:
    sps: bytes  # the sequence parameter set NAL unit (without start code)
    annexb: bytes  # every parameter set found, each after a 4-byte start code: extradata


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B buffer, without their start codes (trailing zeros kept)."""
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        end = data.find(b"\x00\x00\x01", begin)
        unit = data[begin:] if end < 0 else data[begin:end]
        if end >= 0 and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the leading zero of a 4-byte start code
        if unit:
            units.append(unit)
        start = end
    return units


def parameter_sets(data: bytes | memoryview, codec: str) -> ParameterSets | None:
    """The parameter sets in front of an access unit's first picture, or None if it has none.

    ``codec`` is FFmpeg's name: ``h264`` or ``hevc``; any other codec has none to find.
    """
    if codec not in ("h264", "hevc"):
        return None
    head = bytes(data[:SCAN_BYTES])
    sps: bytes | None = None
    found: list[bytes] = []
    for unit in nal_units(head):
        if codec == "h264":
            kind = unit[0] & 0x1F
            if kind in _H264_VCL:
                break
            wanted = kind in (_H264_SPS, _H264_PPS)
            is_sps = kind == _H264_SPS
        else:
            kind = (unit[0] >> 1) & 0x3F
            if kind in _HEVC_VCL:
                break
            wanted = kind in (_HEVC_VPS, _HEVC_SPS, _HEVC_PPS)
            is_sps = kind == _HEVC_SPS
        if wanted:
            found.append(unit)
            if is_sps and sps is None:
                sps = unit
    if sps is None:
        return None
    return ParameterSets(sps, b"".join(b"\x00\x00\x00\x01" + unit for unit in found))
