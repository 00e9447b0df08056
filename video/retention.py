"""Clip retention: keep the clips within a disk budget, deleting the oldest first.

:func:`plan_retention` is pure. :func:`enforce_retention` applies it to a directory and
reports every deletion through a callback, so the gateway writes an audit entry for each:
a clip never disappears silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("threshold.video")


@dataclass(frozen=True, slots=True)
class StoredClip:
    path: Path
    size_bytes: int
    mtime: float


@dataclass(frozen=True, slots=True)
class ClipDeleted:
    """Event: a clip was deleted to stay within the budget (for a ``clip.deleted`` entry)."""

    path: Path
    size_bytes: int
    reason: str = "retention"


def plan_retention(
    clips: Sequence[StoredClip], budget_bytes: int, keep: Iterable[Path] = ()
) -> list[StoredClip]:
    """The clips to delete, oldest first, so that the rest fit in ``budget_bytes``.

    Clips in ``keep`` (those being written) are never chosen, even if the budget cannot be
    met without them.
    """
    if budget_bytes < 0:
        raise ValueError("budget_bytes must be >= 0")
    protected = set(keep)
    total = sum(c.size_bytes for c in clips)
    doomed: list[StoredClip] = []
    for clip in sorted(clips, key=lambda c: (c.mtime, str(c.path))):
        if total <= budget_bytes:
            break
        if clip.path in protected:
            continue
        doomed.append(clip)
        total -= clip.size_bytes
    return doomed


def list_clips(directory: Path) -> list[StoredClip]:
    clips = []
    for path in directory.glob("*.mp4"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        clips.append(StoredClip(path, st.st_size, st.st_mtime))
    return clips


def enforce_retention(
    directory: Path,
    budget_bytes: int,
    on_deleted: Callable[[ClipDeleted], None],
    keep: Iterable[Path] = (),
) -> list[ClipDeleted]:
    """Delete the oldest clips beyond the budget; call ``on_deleted`` for each. Blocking I/O."""
    deleted = []
    for clip in plan_retention(list_clips(directory), budget_bytes, keep):
        try:
            clip.path.unlink()
        except FileNotFoundError:
            continue
        event = ClipDeleted(clip.path, clip.size_bytes)
        deleted.append(event)
        try:
            on_deleted(event)
        except Exception:
            log.exception("clip deletion listener failed")
    return deleted
