"""Media retention: keep clips and snapshots within one disk budget, the oldest first.

:func:`plan_retention` is pure. :func:`enforce_retention` applies it to a directory and
reports every deletion through a callback, so the gateway writes an audit entry for each:
a clip or a snapshot never disappears silently. Snapshots count toward the same budget as
clips: the budget is what the owner gave the camera on disk, whatever the files are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("threshold.video")


#: The files retention manages: clips (fragmented MP4) and snapshots (JPEG).
MEDIA_SUFFIXES = (".mp4", ".jpg")


@dataclass(frozen=True, slots=True)
class StoredClip:
    """A clip or a snapshot on disk."""

    path: Path
    size_bytes: int
    mtime: float


@dataclass(frozen=True, slots=True)
class ClipDeleted:
    """Event: a clip or snapshot was deleted to stay within the budget (``clip.deleted``)."""

    path: Path
    size_bytes: int
    reason: str = "retention"

    @property
    def media(self) -> str:
        return "snapshot" if self.path.suffix == ".jpg" else "clip"


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


def list_media(directory: Path) -> list[StoredClip]:
    """The clips and snapshots in ``directory`` (none if it does not exist yet)."""
    if not directory.is_dir():
        return []
    clips = []
    for path in directory.iterdir():
        if path.suffix not in MEDIA_SUFFIXES:
            continue
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
    """Delete the oldest media beyond the budget; call ``on_deleted`` for each. Blocking I/O."""
    deleted = []
    for clip in plan_retention(list_media(directory), budget_bytes, keep):
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
