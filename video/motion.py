"""Motion detection on the luma (Y) plane: pure numpy, no I/O, the clock passed in.

The Y plane is viewed without a copy (``np.frombuffer`` over the frame's plane, honouring
its line stride), averaged down to coarse cells, and compared with a running average of the
scene. A cell whose luma differs from the average by more than ``pixel_threshold`` has
changed; motion is when more than ``area_threshold`` of the unmasked cells changed.
Averaging cells first is what makes this robust to sensor noise: the noise of 256 pixels
averages out, a person does not. Masks (rectangles in 0..1 coordinates) exclude a street,
a tree or a clock overlay.

The detector emits ``motion.started`` on the first moving picture and ``motion.stopped``
after ``quiet_s`` without motion.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[np.uint8]
Cells = npt.NDArray[np.float32]


class MotionEventKind(enum.Enum):
    STARTED = "motion.started"
    STOPPED = "motion.stopped"


@dataclass(frozen=True, slots=True)
class MotionEvent:
    kind: MotionEventKind
    at: float  # the caller's clock (time.monotonic() in the service)
    changed_fraction: float


@dataclass(frozen=True, slots=True)
class MotionConfig:
    cell_px: int = 16
    pixel_threshold: float = 20.0
    area_threshold: float = 0.01
    background_alpha: float = 0.1
    quiet_s: float = 2.0
    masks: tuple[tuple[float, float, float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.cell_px < 1:
            raise ValueError("cell_px must be >= 1")
        if not 0 < self.background_alpha <= 1:
            raise ValueError("background_alpha must be in (0, 1]")
        if not 0 <= self.area_threshold < 1:
            raise ValueError("area_threshold must be in [0, 1)")
        for x0, y0, x1, y1 in self.masks:
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise ValueError("a mask is (x0, y0, x1, y1) with 0 <= x0 < x1 <= 1, same for y")


def y_plane(plane: Any, width: int, height: int) -> Gray:
    """A zero-copy (height, width) view of a luma plane whose rows are ``line_size`` apart.

    ``plane`` is anything with the buffer protocol and a ``line_size`` (a PyAV VideoPlane).
    """
    stride = int(plane.line_size)
    flat = np.frombuffer(plane, dtype=np.uint8)
    return flat[: stride * height].reshape(height, stride)[:, :width]


def downscale(gray: Gray, cell_px: int) -> Cells:
    """Mean of each cell_px x cell_px block (edges that do not fill a block are cut)."""
    rows = gray.shape[0] // cell_px
    cols = gray.shape[1] // cell_px
    if rows == 0 or cols == 0:
        raise ValueError("the picture is smaller than one cell")
    # A strided view: the slicing and reshape do not copy; mean() makes the small result.
    blocks = gray[: rows * cell_px, : cols * cell_px].reshape(rows, cell_px, cols, cell_px)
    cells: Cells = blocks.mean(axis=(1, 3), dtype=np.float32)
    return cells


def mask_cells(
    shape: tuple[int, int], masks: tuple[tuple[float, float, float, float], ...]
) -> npt.NDArray[np.bool_]:
    """True for the cells that count (outside every mask)."""
    counted = np.ones(shape, dtype=np.bool_)
    rows, cols = shape
    for x0, y0, x1, y1 in masks:
        r0, r1 = int(y0 * rows), int(np.ceil(y1 * rows))
        c0, c1 = int(x0 * cols), int(np.ceil(x1 * cols))
        counted[r0:r1, c0:c1] = False
    return counted


class MotionDetector:
    """Feeds luma pictures, emits :class:`MotionEvent` when motion starts or stops."""

    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._background: Cells | None = None
        self._counted: npt.NDArray[np.bool_] | None = None
        self._moving = False
        self._last_motion_at: float | None = None
        self.last_fraction = 0.0

    @property
    def moving(self) -> bool:
        return self._moving

    @property
    def last_motion_at(self) -> float | None:
        return self._last_motion_at

    def reset(self) -> None:
        self._background = None
        self._counted = None

    def feed(self, gray: Gray, at: float) -> MotionEvent | None:
        cfg = self.config
        cells = downscale(gray, cfg.cell_px)
        if self._background is None or self._background.shape != cells.shape:
            self._background = cells.copy()
            self._counted = mask_cells(cells.shape, cfg.masks)
            return None
        assert self._counted is not None
        changed = np.abs(cells - self._background) > cfg.pixel_threshold
        counted = int(self._counted.sum())
        fraction = float((changed & self._counted).sum()) / counted if counted else 0.0
        self.last_fraction = fraction
        # The background follows the scene slowly, so light changes fade in and a parked
        # car becomes background, while a person walking past stands out.
        self._background += cfg.background_alpha * (cells - self._background)
        if fraction > cfg.area_threshold:
            self._last_motion_at = at
            if not self._moving:
                self._moving = True
                return MotionEvent(MotionEventKind.STARTED, at, fraction)
            return None
        quiet_for = 0.0 if self._last_motion_at is None else at - self._last_motion_at
        if self._moving and quiet_for >= cfg.quiet_s:
            self._moving = False
            return MotionEvent(MotionEventKind.STOPPED, at, fraction)
        return None
