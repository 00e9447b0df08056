"""The relay's storage interface, the records it returns, and how a backend is chosen.

Everything the relay holds is in its database: gateways and their keys, each held log
(leaves, tree nodes, held size), the witnessed checkpoints, alarms, the owners' mail and the
nonces of signed requests already seen (so that a second relay process refuses a replay the
first one saw). Nothing of it lives in a relay process, which is what lets several processes
serve one database.

Two backends implement :class:`RelayStorage`: SQLite (``cloud.storage_sqlite``, the default,
for a household that hosts its own relay) and PostgreSQL (``cloud.storage_postgres``, for a
fleet: many relay processes, one database). The relay's ``relay.toml`` chooses
(:func:`load_config`); both pass one shared test suite.

The one operation that must be atomic per gateway is :meth:`RelayStorage.upload` (and
:meth:`RelayStorage.witness_receipt`): read the held log, run the pure witness checks
(``cloud.witness``), write the accepted leaves or the alarm, in one transaction that holds the
gateway's lock, so two processes given the same gateway's batches at once behave as if the
batches had come one after the other.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cloud.errors import CloudError
from cloud.wire import UploadBatch, WireReceipt
from cloud.witness import Refused
from store.checkpoint import Checkpoint, Format, SignedCheckpoint, log_origin

CONFIG_FILE = "relay.toml"
DATABASE_FILE = "relay.sqlite3"
#: The Ed25519 cosignature over an accepted checkpoint (the relay's key is not storage's).
Cosigner = Callable[[Checkpoint], bytes]
#: One tlog-witness add-checkpoint decision (cloud.tlog_witness): given the origin's latest
#: cosigned (size, root), or None, the new latest (size, root, cosigned note) to keep, or None.
WitnessStep = Callable[[tuple[int, bytes] | None], tuple[int, bytes, str] | None]


class StorageError(CloudError):
    """The database is unreachable, misconfigured, or refused an operation."""

    code = "storage_error"


class StorageConfigError(StorageError):
    """``relay.toml``'s storage settings or the password file are wrong."""

    code = "storage_config"


class SchemaTooNew(StorageError):
    """The database was migrated by a newer relay; this one refuses to touch it."""

    code = "schema_too_new"


class NonceReplayed(CloudError):
    """The request's nonce was already claimed (by this relay process or another): a replay.
    The relay answers it as a bad signature (401 ``unauthorized``)."""

    code = "nonce_replayed"


class UnknownGateway(CloudError):
    code = "unknown_gateway"


class OwnerMismatch(CloudError):
    code = "owner_mismatch"


class Backend(enum.Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class StorageConfig:
    """Where the relay keeps its state. SQLite needs only the path; PostgreSQL a DSN (libpq
    URI or key=value, without the password) and the password in a file of mode 0600."""

    backend: Backend = Backend.SQLITE
    sqlite_path: Path | None = None
    dsn: str = ""
    password_file: Path | None = None
    #: Connections per relay process (PostgreSQL).
    pool_size: int = 8

    @classmethod
    def sqlite(cls, path: Path) -> StorageConfig:
        return cls(Backend.SQLITE, sqlite_path=path)

    @classmethod
    def postgresql(
        cls, dsn: str, password_file: Path | None = None, pool_size: int = 8
    ) -> StorageConfig:
        return cls(Backend.POSTGRESQL, dsn=dsn, password_file=password_file, pool_size=pool_size)


@dataclass(frozen=True)
class GatewayRecord:
    gateway_id: str
    public_key: bytes
    owner_key: bytes


def signed_from_row(
    gateway_id: str, size: int, root: bytes, time_ms: int, signature: bytes
) -> SignedCheckpoint:
    """A witnessed checkpoint from its row: a 68-byte ``signature`` (key ID and Ed25519
    signature) is a C2SP note, a 64-byte one ``threshold-checkpoint/v1``."""
    if len(signature) == 4 + 64:
        note = Checkpoint(log_origin(gateway_id), size, root, time_ms, Format.NOTE)
        return SignedCheckpoint(note, signature[4:], signature[:4])
    legacy = Checkpoint(gateway_id, size, root, time_ms, Format.LEGACY)
    return SignedCheckpoint(legacy, signature)


def origin_hash(origin: str) -> str:
    """The monitoring path's name for a log (tlog-witness): lowercase hex SHA-256 of it."""
    return hashlib.sha256(origin.encode()).hexdigest()


def stored_signature(signed: SignedCheckpoint) -> bytes:
    """What ``witnessed.signature`` keeps: the key ID (a note's) and the signature."""
    return signed.key_id + signed.signature


@dataclass(frozen=True)
class WitnessedRecord:
    checkpoint: SignedCheckpoint
    source: str
    cosignature: bytes | None


@dataclass(frozen=True)
class Alarm:
    id: int
    gateway_id: str
    time_ms: int
    code: str
    detail: str


@dataclass(frozen=True)
class MailItem:
    """The owner's mail to a gateway: opaque bytes sealed to the gateway's key. ``id`` counts
    per gateway, in the order the posts committed, so a reader's ``after`` never skips one."""

    id: int
    sealed: bytes
    posted_ms: int


@dataclass(frozen=True)
class NonceClaim:
    """A signed request's nonce, to be kept until ``expires_ms`` (two skew windows past its
    signed time): claimed in the same transaction as the work the request asks for."""

    nonce: str
    expires_ms: int


@dataclass(frozen=True)
class UploadOutcome:
    """The held size after an upload, and the cosignature or why the batch was refused."""

    held_size: int
    result: bytes | Refused


class RelayStorage(Protocol):
    """What the relay asks of its database. Every method is one transaction."""

    async def ready(self) -> None:
        """Return when the database answers; raise :class:`StorageError` when it does not."""

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def register_gateway(
        self, gateway_id: str, public_key: bytes, owner_key: bytes, now_ms: int
    ) -> None:
        """Register a gateway, or re-register it with a new key by the same owner."""

    async def gateway(self, gateway_id: str) -> GatewayRecord:
        """The registered gateway, or :class:`UnknownGateway`."""

    async def held_size(self, gateway_id: str) -> int: ...

    async def claim_nonce(self, nonce: str, expires_ms: int, now_ms: int) -> bool:
        """Record a request nonce until ``expires_ms``: False if it was already recorded (a
        replay, whichever relay process saw it first)."""

    async def upload(
        self,
        gateway_id: str,
        batch: UploadBatch,
        cosign: Cosigner,
        now_ms: int,
        nonce: NonceClaim | None = None,
    ) -> UploadOutcome:
        """Check one batch against the held log and keep it or the alarm, atomically for
        this gateway across every relay process. ``nonce`` is claimed in the same transaction
        (one commit per upload, not two); if it was claimed before, :class:`NonceReplayed`
        and nothing is written."""

    async def witness_receipt(
        self, receipt: WireReceipt, unknown_key: bytes, now_ms: int
    ) -> Refused | None:
        """Check a courier's receipt and keep its checkpoint (or the alarm), atomically with
        the gateway's uploads. An unknown gateway is checked under ``unknown_key``."""

    async def entries(self, gateway_id: str, since: int, limit: int) -> list[tuple[int, bytes]]: ...

    async def witnessed(self, gateway_id: str) -> list[WitnessedRecord]: ...

    async def alarms(self, gateway_id: str) -> list[Alarm]: ...

    async def post_mail(self, gateway_id: str, sealed: bytes, now_ms: int) -> int: ...

    async def add_witness_log(self, origin: str, vkey: str, now_ms: int) -> None:
        """Trust ``vkey`` for ``origin`` as a C2SP witness (a log that is not a gateway's)."""

    async def witness_log_vkey(self, origin: str) -> str | None:
        """The vkey trusted for a log added by hand, or None."""

    async def witness_add_checkpoint(self, origin: str, step: WitnessStep, now_ms: int) -> None:
        """Run ``step`` on the origin's latest cosigned checkpoint and keep what it returns,
        in one transaction that no other add-checkpoint for the origin interleaves with (the
        atomicity tlog-witness asks for), across relay processes."""

    async def witness_checkpoint(self, origin_hash: str) -> str | None:
        """The cosigned note kept for the origin whose SHA-256 (hex) is ``origin_hash``."""

    async def mail_after(self, gateway_id: str, after: int, limit: int) -> list[MailItem]: ...


def read_password_file(path: Path) -> str:
    """The database password: the file's first line. The file must be a regular file that
    only its owner can read or write (mode 0600 or 0400), as the relay's key is."""
    try:
        info = path.stat()
    except OSError as exc:
        raise StorageConfigError(f"cannot read the password file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise StorageConfigError(f"the password file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise StorageConfigError(
            f"the password file {path} is readable by others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); chmod 600 it"
        )
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageConfigError(f"cannot read the password file {path}: {exc}") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise StorageConfigError(f"the password file {path} is empty")
    return password


def load_config(directory: Path, path: Path | None = None) -> StorageConfig:
    """The storage settings of the relay in ``directory``: ``[storage]`` of ``relay.toml``
    there (or of ``path``), SQLite in ``relay.sqlite3`` when there is none."""
    default = StorageConfig.sqlite(directory / DATABASE_FILE)
    file = path if path is not None else directory / CONFIG_FILE
    if not file.exists():
        if path is not None:
            raise StorageConfigError(f"no relay config at {file}")
        return default
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StorageConfigError(f"{file}: {exc}") from None
    section = data.get("storage", {})
    if not isinstance(section, dict):
        raise StorageConfigError(f"{file}: [storage] is not a table")
    unknown = set(section) - {"backend", "path", "dsn", "password_file", "pool_size"}
    if unknown:
        raise StorageConfigError(f"{file}: unknown [storage] keys: {', '.join(sorted(unknown))}")
    try:
        backend = Backend(section.get("backend", Backend.SQLITE.value))
    except ValueError:
        raise StorageConfigError(f"{file}: backend is 'sqlite' or 'postgresql'") from None
    if backend is Backend.SQLITE:
        where = section.get("path", DATABASE_FILE)
        if not isinstance(where, str):
            raise StorageConfigError(f"{file}: path is a string")
        return StorageConfig.sqlite(directory / where)
    dsn = section.get("dsn")
    if not isinstance(dsn, str) or not dsn:
        raise StorageConfigError(f"{file}: backend 'postgresql' needs a dsn")
    if "password=" in dsn or _uri_has_password(dsn):
        raise StorageConfigError(f"{file}: keep the password out of the dsn (password_file)")
    secret = section.get("password_file")
    if secret is not None and not isinstance(secret, str):
        raise StorageConfigError(f"{file}: password_file is a path")
    pool = section.get("pool_size", StorageConfig.pool_size)
    if isinstance(pool, bool) or not isinstance(pool, int) or not 1 <= pool <= 200:
        raise StorageConfigError(f"{file}: pool_size is an integer from 1 to 200")
    return StorageConfig.postgresql(
        dsn, None if secret is None else directory / os.path.expanduser(secret), pool
    )


def _uri_has_password(dsn: str) -> bool:
    if "://" not in dsn:
        return False
    authority = dsn.split("://", 1)[1].split("/", 1)[0]
    return "@" in authority and ":" in authority.rsplit("@", 1)[0]


async def open_storage(config: StorageConfig) -> RelayStorage:
    """Open (and migrate) the configured backend."""
    if config.backend is Backend.SQLITE:
        from cloud.storage_sqlite import SqliteStorage

        if config.sqlite_path is None:
            raise StorageConfigError("the SQLite backend needs a path")
        return await SqliteStorage.open(config.sqlite_path)
    try:
        from cloud.storage_postgres import PostgresStorage
    except ImportError:
        raise StorageConfigError(
            "the PostgreSQL backend needs psycopg: pip install 'threshold-gateway[postgresql]'"
        ) from None
    password = None if config.password_file is None else read_password_file(config.password_file)
    return await PostgresStorage.open(config.dsn, password, pool_size=config.pool_size)
