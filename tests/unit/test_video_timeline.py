"""The camera's timeline, pure: jumps in its timestamps, health re-anchored, parameter sets."""

from __future__ import annotations

import pytest

from video.bitstream import nal_units, parameter_sets
from video.health import HealthTracker
from video.timeline import BACK_TOLERANCE_S, FORWARD_TOLERANCE_S, Jump, TimelineWatch

FPS = 15


def feed(watch: TimelineWatch, stamps: list[tuple[float, float]]) -> list[Jump]:
    return [jump for dts_s, at in stamps if (jump := watch.check(dts_s, at)) is not None]


def steady(start_dts: float, start_at: float, frames: int) -> list[tuple[float, float]]:
    return [(start_dts + i / FPS, start_at + i / FPS) for i in range(frames)]


def test_a_steady_stream_has_no_jump() -> None:
    assert feed(TimelineWatch(), steady(100.0, 5.0, 300)) == []


def test_a_clock_reset_back_is_one_jump_back() -> None:
    stamps = steady(100.0, 0.0, 60) + steady(94.0 + 60 / FPS, 60 / FPS, 60)
    jumps = feed(TimelineWatch(), stamps)
    assert len(jumps) == 1
    assert jumps[0].backward
    assert jumps[0].by_s == pytest.approx(-6.0, abs=1e-9)
    assert jumps[0].at == pytest.approx(4.0)


def test_a_leap_ahead_is_one_jump_forward() -> None:
    stamps = steady(0.0, 0.0, 60) + steady(24.0, 4.0, 60)
    (jump,) = feed(TimelineWatch(), stamps)
    assert not jump.backward
    assert jump.by_s == pytest.approx(20.0)


def test_pauses_bursts_and_jitter_are_not_jumps() -> None:
    # The camera paused 5 s (its clock and the arrivals both moved on), then a network
    # hiccup delivered 2 s of packets at once, then a step back within the tolerance.
    stamps = steady(0.0, 0.0, 30) + steady(7.0, 7.0, 30)
    late = 7.0 + 30 / FPS + 2.0
    stamps += [(9.0 + i / FPS, late + i * 0.001) for i in range(30)]
    stamps += [(9.0 + 30 / FPS - BACK_TOLERANCE_S + 0.01, late + 0.1)]
    assert feed(TimelineWatch(), stamps) == []


def test_the_tolerances_are_the_edges() -> None:
    watch = TimelineWatch()
    assert watch.check(10.0, 0.0) is None
    assert watch.check(10.0 + FORWARD_TOLERANCE_S - 0.01, 0.0) is None
    assert watch.check(10.0 + 2 * FORWARD_TOLERANCE_S + 0.01, 0.0) is not None
    watch.reset()  # a new connection: no reference yet
    assert watch.check(0.0, 1.0) is None


def run_health(jump_by: float, re_anchor: bool) -> list[bool]:
    """15 fps for 4 s, then the clock jumps; live, sampled each second up to 20 s."""
    health = HealthTracker()
    watch = TimelineWatch()
    health.on_connected()
    live: list[bool] = []
    for i in range(20 * FPS):
        at = i / FPS
        dts_s = at + (jump_by if at >= 4.0 else 0.0)
        if watch.check(dts_s, at) is not None and re_anchor:
            health.on_discontinuity()
        health.on_packet(at, dts_s, i % FPS == 0)
        if i % FPS == FPS - 1:
            live.append(health.snapshot(at + 0.01).live)
    return live


def test_health_stays_live_through_a_jump_back_when_re_anchored() -> None:
    assert all(run_health(-6.0, re_anchor=True))
    # Without re-anchoring (the old behaviour): not live about 2 s after the jump, for long.
    unanchored = run_health(-6.0, re_anchor=False)
    assert unanchored[:4] == [True] * 4
    assert not any(unanchored[6:20])


def test_health_stays_live_through_a_jump_forward() -> None:
    assert all(run_health(20.0, re_anchor=True))


def test_health_re_anchoring_does_not_hide_a_stall() -> None:
    health = HealthTracker()
    health.on_connected()
    for i in range(3 * FPS):
        health.on_packet(i / FPS, i / FPS, i % FPS == 0)
    health.on_discontinuity()
    assert not health.snapshot(3.0 + health.live_window_s() + 0.1).live


SPS = bytes.fromhex("6742c00dda0507ec05a8")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes.fromhex("65888400")
SEI = bytes.fromhex("0605ff")


def annexb(*units: bytes, long_codes: bool = True) -> bytes:
    code = b"\x00\x00\x00\x01" if long_codes else b"\x00\x00\x01"
    return b"".join(code + unit for unit in units)


def test_h264_parameter_sets_are_read_in_front_of_the_picture() -> None:
    sets = parameter_sets(annexb(SEI, SPS, PPS, IDR), "h264")
    assert sets is not None
    assert sets.sps == SPS
    assert sets.annexb == annexb(SPS, PPS)
    assert parameter_sets(annexb(IDR, SPS), "h264") is None  # after the slice: not its own
    assert parameter_sets(annexb(IDR), "h264") is None
    assert parameter_sets(annexb(SPS, PPS, IDR), "mpeg4") is None
    assert nal_units(annexb(SPS, IDR, long_codes=False)) == [SPS, IDR]


def test_hevc_parameter_sets_include_the_vps() -> None:
    vps, sps, pps, idr = b"\x40\x01\x0c", b"\x42\x01\x01", b"\x44\x01\xc1", b"\x26\x01\xaf"
    sets = parameter_sets(annexb(vps, sps, pps, idr), "hevc")
    assert sets is not None
    assert sets.sps == sps
    assert sets.annexb == annexb(vps, sps, pps)
