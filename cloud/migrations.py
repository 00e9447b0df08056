"""The relay's schema migrations: numbered, forward-only, one SQL file per backend each.

``cloud/schema/NNNN_name.<backend>.sql`` is migration NNNN; both backends have the same
numbers, and migration N means the same change on both. A database records what it has
applied in ``schema_migrations``; a backend applies the missing ones in order inside one
transaction at open (PostgreSQL under an advisory lock, so relay processes starting together
migrate once), and refuses a database that a newer relay has migrated further. There is no
way down: a change is undone by a new migration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from cloud.storage import Backend, SchemaTooNew, StorageError

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.(sqlite|postgresql)\.sql")
VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)"
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(backend: Backend) -> tuple[Migration, ...]:
    """Every migration for ``backend``, in order; the numbers run 1, 2, ... without a gap."""
    found: list[Migration] = []
    for item in resources.files("cloud").joinpath("schema").iterdir():
        match = _NAME.fullmatch(item.name)
        if match and match.group(3) == backend.value:
            found.append(Migration(int(match.group(1)), match.group(2), item.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StorageError(f"the {backend.value} migrations are not numbered 1..N")
    return tuple(found)


def pending(backend: Backend, applied: int) -> tuple[Migration, ...]:
    """What a database at version ``applied`` still needs; refuses one from the future."""
    known = migrations(backend)
    if applied > len(known):
        raise SchemaTooNew(
            f"the relay database is at schema version {applied}; this relay knows "
            f"{len(known)}: run the newer relay"
        )
    return known[applied:]


def latest(backend: Backend) -> int:
    return len(migrations(backend))
