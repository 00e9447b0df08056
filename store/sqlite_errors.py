"""SQLite's result codes mapped to the store's typed errors.

Apart from :mod:`store.errors` so that the pure modules (entries, checkpoints, the Merkle
tree) can raise store errors without importing ``sqlite3``.
"""

from __future__ import annotations

import sqlite3

from store.errors import (
    IntegrityViolation,
    StorageCorrupt,
    StorageFull,
    StorageIOError,
    StorageLocked,
    StorageReadOnly,
    StoreError,
)

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_CONSTRAINT = 19
_SQLITE_NOTADB = 26


def from_sqlite(exc: sqlite3.Error, action: str) -> StoreError:
    """The typed store error for a SQLite failure during ``action`` (e.g. "append")."""
    primary = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    detail = str(exc)
    if primary == _SQLITE_FULL or "disk is full" in detail:
        return StorageFull(f"{action}: the disk or the database quota is full ({detail})")
    if primary == _SQLITE_READONLY or "readonly" in detail:
        return StorageReadOnly(f"{action}: the database cannot be written ({detail})")
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in detail:
        return StorageLocked(f"{action}: the database is locked by another writer ({detail})")
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
        "malformed" in detail or "not a database" in detail
    ):
        return StorageCorrupt(f"{action}: the database file is damaged ({detail})")
    if primary == _SQLITE_CONSTRAINT or isinstance(exc, sqlite3.IntegrityError):
        return IntegrityViolation(f"{action}: {detail}")
    if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN):
        return StorageIOError(f"{action}: the database file cannot be read or written ({detail})")
    return StoreError(f"{action}: {detail}")
