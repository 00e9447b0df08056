"""The pre-roll ring: keyframe start, duration and byte bounds, epochs."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from video.packet import VideoPacket
from video.ring import PrerollRing

TB = Fraction(1, 90_000)


def packet(i: int, *, fps: int = 10, gop: int = 10, size: int = 100, epoch: int = 1) -> VideoPacket:
    dts = i * 90_000 // fps
    return VideoPacket(b"x" * size, dts, dts, TB, i % gop == 0, float(i), epoch)


def test_waits_for_a_keyframe() -> None:
    ring = PrerollRing(preroll_s=5)
    for i in range(1, 10):
        ring.push(packet(i))
    assert len(ring) == 0
    ring.push(packet(10))
    assert ring.packets()[0].keyframe
    assert len(ring) == 1


def test_keeps_at_least_the_preroll_and_at_most_one_group_more() -> None:
    ring = PrerollRing(preroll_s=3.0)
    for i in range(200):  # 20 s at 10 fps, keyframe every 1 s
        ring.push(packet(i))
        if i >= 30:
            assert 3.0 <= ring.span_s < 4.0
        assert ring.packets()[0].keyframe
    assert ring.packets()[-1].dts == packet(199).dts


def test_byte_limit_is_hard() -> None:
    ring = PrerollRing(preroll_s=60.0, max_bytes=5_000)
    for i in range(300):
        ring.push(packet(i, size=120))
        assert ring.bytes <= 5_000
        assert ring.packets()[0].keyframe
    # 10 packets of 120 bytes per group: 4 whole groups fit in 5 000 bytes.
    assert ring.bytes == 4 * 10 * 120


def test_a_group_larger_than_the_limit_empties_the_ring() -> None:
    ring = PrerollRing(preroll_s=60.0, max_bytes=1_000)
    for i in range(25):
        ring.push(packet(i, size=200))
    assert ring.stats().overflows >= 1
    assert ring.bytes <= 1_000
    assert len(ring) == 0 or ring.packets()[0].keyframe


def test_new_epoch_starts_afresh() -> None:
    ring = PrerollRing(preroll_s=5.0)
    for i in range(25):
        ring.push(packet(i))
    ring.push(packet(3, epoch=2))  # not a keyframe
    assert len(ring) == 0
    ring.push(packet(0, epoch=2))
    assert [p.epoch for p in ring.packets()] == [2]


def test_latest_group_starts_at_the_newest_keyframe() -> None:
    ring = PrerollRing(preroll_s=5.0)
    for i in range(35):
        ring.push(packet(i))
    group = ring.latest_group()
    assert group[0].keyframe
    assert group[0].dts == packet(30).dts
    assert len(group) == 5


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=3_000), min_size=1, max_size=300),
    keys=st.lists(st.booleans(), min_size=1, max_size=300),
    gaps=st.lists(st.integers(min_value=0, max_value=30_000), min_size=1, max_size=300),
    preroll_s=st.floats(min_value=0.0, max_value=3.0),
    max_bytes=st.integers(min_value=1, max_value=50_000),
)
def test_invariants_hold_for_any_stream(
    sizes: list[int], keys: list[bool], gaps: list[int], preroll_s: float, max_bytes: int
) -> None:
    ring = PrerollRing(preroll_s=preroll_s, max_bytes=max_bytes)
    pushed: list[VideoPacket] = []
    dts = 0
    for i, size in enumerate(sizes):
        dts += gaps[i % len(gaps)]
        p = VideoPacket(b"\0" * size, dts, dts, TB, keys[i % len(keys)], float(i), 1)
        pushed.append(p)
        ring.push(p)
        held = ring.packets()
        assert ring.bytes == sum(x.size for x in held) <= max_bytes
        if held:
            assert held[0].keyframe
            # What is held is exactly the newest packets, in order.
            assert list(held) == pushed[-len(held) :]
            # Dropping the oldest group would have left less than the pre-roll.
            later_keys = [j for j, x in enumerate(held) if x.keyframe and j > 0]
            if later_keys and ring.bytes <= max_bytes:
                assert held[-1].dts_s - held[later_keys[0]].dts_s < preroll_s or (
                    sum(x.size for x in held) > max_bytes
                )
