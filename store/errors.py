"""The store package's exceptions: one base, typed subclasses with stable codes.

The gateway turns every :class:`StoreError` into a fail-closed answer, so the codes are a
contract: they never change once released. :func:`store.sqlite_errors.from_sqlite`
maps SQLite's result codes to the one subclass that names the cause (disk full, read-only,
locked, corrupt).
"""

from __future__ import annotations

from typing import ClassVar


class StoreError(Exception):
    """Base of every deliberate error raised by the store."""

    code: ClassVar[str] = "storage_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StorageFull(StoreError):
    """The disk (or the database's page quota) is full; nothing of the failed write was kept."""

    code = "storage_full"


class StorageReadOnly(StoreError):
    """The database file or its directory cannot be written."""

    code = "storage_read_only"


class StorageLocked(StoreError):
    """Another process holds the database lock longer than the busy timeout."""

    code = "storage_locked"


class StorageCorrupt(StoreError):
    """The file is not a SQLite database, or its pages are damaged."""

    code = "storage_corrupt"


class StorageIOError(StoreError):
    """The operating system reported an I/O error while reading or writing."""

    code = "storage_io_error"


class SchemaTooNew(StoreError):
    """The database was written by a newer Threshold; this code refuses to touch it."""

    code = "schema_too_new"


class StoreClosed(StoreError):
    """The store was used after ``close()``."""

    code = "store_closed"


class InvalidEntry(StoreError):
    """An audit entry (kind, time or body) cannot be encoded canonically."""

    code = "invalid_entry"


class IdentityMismatch(StoreError):
    """The database belongs to a different gateway key or origin than the one opening it."""

    code = "identity_mismatch"


class NoSigningKey(StoreError):
    """A checkpoint was requested from a store opened without the gateway key."""

    code = "no_signing_key"


class IntegrityViolation(StoreError):
    """A write broke a rule of the schema (append-only log, a reference, a monotonic value)."""

    code = "integrity_violation"


class DoorBusy(StoreError):
    """A door already has an access session that is not closed (session invariant 4, in
    :mod:`gateway.access.session`)."""

    code = "door_busy"


class CommitmentKeyError(StoreError):
    """The audit log's commitment key file is missing, unreadable, readable by others, or not
    the key this database's entries were committed with (docs/audit-log.md)."""

    code = "commitment_key_unusable"


class OutageJournalFull(StorageFull):
    """The outage journal's preallocated space is used up (docs/audit-log.md, "When the
    store cannot write")."""

    code = "outage_journal_full"


class OutageJournalCorrupt(StoreError):
    """The outage journal's header, or a whole record in it, is not what this code writes."""

    code = "outage_journal_corrupt"
