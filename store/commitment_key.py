"""Where the audit log's commitment key lives: a mode-0600 file beside the database.

The key (``store.commitment``) is what lets the gateway check the readable copy of every
sealed entry without the owner's key. It is kept in ``<database>.audit-key`` (base64url of
32 bytes, unpadded, one line, mode 0600), made by the store the first time it opens the
database for writing, and named in the database (``audit_commitment_key``: an 8-byte key id
and the first index committed with it), so a missing, replaced or wrong key file is refused
(``commitment_key_unusable``) rather than making every row look forged. A key file readable by
group or others is refused too: whoever reads it can forge a readable copy that verifies.

Synchronous file and table operations: the store runs them in its writer thread at open; the
CLI on its read-only connection.
"""

from __future__ import annotations

import base64
import binascii
import os
import sqlite3
import stat
from pathlib import Path

from groundwork.files import write_file
from store.commitment import KEY_BYTES, CommitmentKey
from store.errors import CommitmentKeyError

SUFFIX = ".audit-key"


def key_path(database: Path) -> Path:
    """The commitment key file of the database at ``database``."""
    return database.with_name(database.name + SUFFIX)


def read_key(path: Path) -> CommitmentKey:
    try:
        mode = path.stat().st_mode
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        raise CommitmentKeyError(f"the commitment key file {path} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommitmentKeyError(f"cannot read the commitment key file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CommitmentKeyError(f"the commitment key file {path} is readable by others")
    try:
        secret = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise CommitmentKeyError(f"the commitment key file {path} is not base64url") from None
    if len(secret) != KEY_BYTES:
        raise CommitmentKeyError(f"the commitment key file {path} does not hold 32 bytes")
    return CommitmentKey(secret)


def recorded(conn: sqlite3.Connection) -> tuple[bytes, int] | None:
    """(key id, first index committed with it) as the database records them, if any."""
    row = conn.execute("SELECT key_id, from_index FROM audit_commitment_key").fetchone()
    return None if row is None else (bytes(row[0]), int(row[1]))


def claim(conn: sqlite3.Connection, database: Path, tree_size: int) -> CommitmentKey:
    """The key for appending to the database on ``conn`` (autocommit), made if it has none."""
    path = key_path(database)
    record = recorded(conn)
    if record is None:
        if not path.exists():
            secret = os.urandom(KEY_BYTES)
            text = base64.urlsafe_b64encode(secret).rstrip(b"=") + b"\n"
            try:
                write_file(path, text)
            except OSError as exc:
                raise CommitmentKeyError(f"cannot write {path}: {exc.strerror}") from None
        key = read_key(path)
        conn.execute(
            "INSERT INTO audit_commitment_key (singleton, key_id, from_index) VALUES (1, ?, ?)",
            (key.key_id, tree_size),
        )
        return key
    key = read_key(path)
    if key.key_id != record[0]:
        raise CommitmentKeyError(
            f"{path} is not the commitment key this database's entries were committed with"
        )
    return key


def for_reading(
    conn: sqlite3.Connection, database: Path, explicit: Path | None = None
) -> tuple[CommitmentKey | None, int | None]:
    """(the key, the first index committed with it) for a verifier; (None, None) for a
    database that never had one. A recorded key whose file is missing or wrong raises."""
    record = recorded(conn)
    if record is None:
        return None, None
    key = read_key(explicit or key_path(database))
    if key.key_id != record[0]:
        raise CommitmentKeyError(
            f"{explicit or key_path(database)} is not this database's commitment key"
        )
    return key, record[1]
