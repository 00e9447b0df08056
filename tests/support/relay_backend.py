"""The relay's two storage backends as a test parameter: SQLite, and PostgreSQL on the
session's throw-away cluster (tests/support/postgres.py).

``backend.config(directory)`` is the storage of the relay in ``directory``: SQLite's file
there, or a PostgreSQL database of its own per directory (created on first use), so two
relays given the same directory share one database, as relay processes of a fleet do, and
a relay in a fresh directory starts empty. ``backend.write_config(directory)`` writes the
``relay.toml`` (DSN, password file of mode 0600) a relay started as a process reads.
``backend.stored_files(directory)`` lists every file that holds what that relay stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cloud.storage import CONFIG_FILE, StorageConfig
from tests.support.postgres import Cluster


@dataclass
class RelayBackend:
    name: str
    cluster: Cluster | None = None
    _databases: dict[Path, str] = field(default_factory=dict)

    @property
    def is_postgres(self) -> bool:
        return self.cluster is not None

    def _database(self, directory: Path) -> str:
        assert self.cluster is not None
        key = directory.resolve()
        if key not in self._databases:
            self._databases[key] = self.cluster.create_database("relay")
        return self._databases[key]

    def _password_file(self, directory: Path) -> Path:
        assert self.cluster is not None
        directory.mkdir(parents=True, exist_ok=True)
        return self.cluster.write_password_file(directory / "db.password")

    def config(self, directory: Path) -> StorageConfig:
        if self.cluster is None:
            return StorageConfig.sqlite(directory / "relay.sqlite3")
        return StorageConfig.postgresql(
            self.cluster.dsn(self._database(directory)),
            self._password_file(directory),
            pool_size=4,
        )

    def write_config(self, directory: Path) -> None:
        if self.cluster is None:
            return
        dsn = self.cluster.dsn(self._database(directory))
        secret = self._password_file(directory)
        (directory / CONFIG_FILE).write_text(
            f'[storage]\nbackend = "postgresql"\ndsn = "{dsn}"\n'
            f'password_file = "{secret}"\npool_size = 4\n'
        )

    def stored_files(self, directory: Path) -> list[Path]:
        """Every file holding what the relay in ``directory`` stored: the directory's own
        files and, on PostgreSQL, its database's files and the cluster's WAL, after a
        ``CHECKPOINT`` has written the shared buffers out."""
        files = [path for path in sorted(directory.rglob("*")) if path.is_file()]
        if self.cluster is None:
            return files
        name = self._database(directory)
        self.cluster.psql("CHECKPOINT")
        oid = self.cluster.psql(f"SELECT oid FROM pg_database WHERE datname = '{name}'").strip()
        assert oid.isdigit(), oid
        data = self.cluster.data_dir
        for folder in (data / "base" / oid, data / "pg_wal"):
            files += [path for path in sorted(folder.iterdir()) if path.is_file()]
        return files
