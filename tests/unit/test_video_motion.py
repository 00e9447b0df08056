"""Motion on synthetic pictures: a moving block is motion, sensor noise is not."""

from __future__ import annotations

import numpy as np
import pytest

from video.motion import MotionConfig, MotionDetector, MotionEventKind, downscale, y_plane

W, H = 320, 240


def scene(rng: np.random.Generator, noise: float = 6.0) -> np.ndarray:
    base = np.full((H, W), 90.0) + rng.normal(0, noise, (H, W))
    return np.clip(base, 0, 255).astype(np.uint8)


def with_block(img: np.ndarray, x: int, y: int, size: int = 48) -> np.ndarray:
    out = img.copy()
    out[y : y + size, x : x + size] = 230
    return out


def test_sensor_noise_is_not_motion() -> None:
    rng = np.random.default_rng(1)
    det = MotionDetector()
    events = [det.feed(scene(rng, noise=8.0), t / 4) for t in range(80)]
    assert [e for e in events if e is not None] == []
    assert det.last_fraction == 0.0


def test_a_moving_block_starts_then_stops_after_the_quiet_time() -> None:
    rng = np.random.default_rng(2)
    det = MotionDetector(MotionConfig(quiet_s=2.0))
    t = 0.0
    events = []
    for _ in range(8):
        events.append(det.feed(scene(rng), t))
        t += 0.25
    for i in range(8):
        events.append(det.feed(with_block(scene(rng), 20 + i * 30, 100), t))
        t += 0.25
    moving_until = t - 0.25
    for _ in range(20):
        events.append(det.feed(scene(rng), t))
        t += 0.25
    got = [e for e in events if e is not None]
    assert [e.kind for e in got] == [MotionEventKind.STARTED, MotionEventKind.STOPPED]
    assert got[0].changed_fraction > 0.01
    assert got[1].at - moving_until >= 2.0


def test_a_mask_hides_motion_inside_it() -> None:
    rng = np.random.default_rng(3)
    det = MotionDetector(MotionConfig(masks=((0.0, 0.0, 0.5, 1.0),)))
    det.feed(scene(rng), 0.0)
    events = [det.feed(with_block(scene(rng), 10 + i * 10, 100), 0.25 * (i + 1)) for i in range(8)]
    assert all(e is None for e in events)
    assert det.feed(with_block(scene(rng), 250, 100), 3.0) is not None


def test_y_plane_is_a_zero_copy_view_that_skips_the_stride_padding() -> None:
    class Plane(bytearray):
        line_size = 352  # 32 bytes of padding per row

    raw = Plane(352 * H)
    plane_rows = np.frombuffer(raw, np.uint8).reshape(H, 352)
    plane_rows[:, :W] = 7
    plane_rows[:, W:] = 255
    view = y_plane(raw, W, H)
    assert view.shape == (H, W)
    assert int(view.max()) == 7
    raw[0] = 9  # the view sees writes: it shares memory with the plane
    assert view[0, 0] == 9


def test_downscale_averages_blocks() -> None:
    img = np.zeros((32, 48), np.uint8)
    img[:16, :16] = 160
    cells = downscale(img, 16)
    assert cells.shape == (2, 3)
    assert cells[0, 0] == pytest.approx(160.0)
    assert cells[1, 2] == 0.0


def test_bad_masks_are_refused() -> None:
    with pytest.raises(ValueError, match="mask"):
        MotionConfig(masks=((0.5, 0.0, 0.2, 1.0),))
