"""Writing a file whole, with its mode set, so that no reader or crash sees half of it.

The one writer for keys, pairings, the virtual lock's state, snapshots and status files. It
is blocking file I/O (call it through ``asyncio.to_thread`` from a coroutine when the file is
large or the disk slow). Two ways to land the bytes:

* ``replace=False`` (keys, snapshots): create the file exclusively (``O_EXCL``); an existing
  file is never overwritten (``FileExistsError``), so a second ``init`` cannot destroy a key.
* ``replace=True`` (state that changes): write a sibling ``NAME.tmp``, fsync it, rename it
  over ``NAME`` and fsync the directory, so after a crash (even SIGKILL or power loss) the
  file holds the old bytes or the new ones, never a mix.

The mode is set with ``fchmod`` on the open descriptor before any byte is written, so the
umask cannot widen or narrow it and the secret is never readable by others, even briefly.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE = 0o600
PUBLIC = 0o644


def write_file(path: Path, data: bytes, *, replace: bool = False, mode: int = PRIVATE) -> None:
    """Write ``data`` to ``path`` whole and fsynced, with ``mode`` (0600 unless told)."""
    if not replace:
        _write_new(path, data, mode)
        return
    tmp = path.with_name(path.name + ".tmp")
    # A temporary file left by a crash may have any mode: never write into it.
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        _write_new(tmp, data, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is; some filesystems refuse to
    # fsync a directory, and then the rename is as durable as they make it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
