"""``threshold backup`` and ``threshold restore``: a replacement mini-PC from one file.

docs/operations.md, "Backup and restore". A backup holds what a new gateway needs to be this
one: ``threshold.toml``, the gateway key, the TLS key and certificate, the audit
commitment key, the locks' pairings (a virtual lock's state file too), everything else in
the gateway directory, and a consistent copy of the database taken with SQLite's online
backup (safe while the gateway runs; its uses, revocations, time floor and log all come
along). Clips only when asked: they are large and the log already holds their hashes.

The archive is a tar stream, encrypted as it is written (:mod:`gateway.trust.backup_seal`),
so no plaintext copy of the secrets lands beside the backup. It ends with ``MANIFEST.json``:
format, gateway id and public key, schema version, and each file's size and SHA-256.

Restore decrypts with the owner's root key into a fresh directory next to the target, checks
every file against the manifest, the gateway key against the manifest's public key, and the
whole audit log (tree, checkpoints under that key, every row against its leaf), and only then
renames it into place: a restore either gives a complete gateway or leaves nothing.
Extraction takes regular files and directories only, inside the target (tarfile's ``data``
filter), because anyone who knows the owner's public key can write a file that decrypts.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nacl.signing import SigningKey

from gateway.app.config import DEFAULT_CLIPS, GatewayConfig, load
from gateway.app.identity import load_signing_key
from gateway.errors import GatewayError
from gateway.trust.backup_seal import FRAME_BYTES, BackupOpener, BackupSealer
from store import commitment_key
from store.errors import StoreError
from store.migrations import schema_version
from store.verify import open_read_only, verify_log

FORMAT = 1
MANIFEST = "MANIFEST.json"
CONFIG_NAME = "threshold.toml"
_READ_BYTES = 1 << 20


class BackupError(GatewayError):
    code = "backup_failed"


class BackupExists(BackupError):
    code = "backup_exists"


class BackupLayoutUnsupported(BackupError):
    code = "backup_layout_unsupported"


class RestoreTargetNotEmpty(BackupError):
    code = "restore_target_not_empty"


class BackupInvalid(BackupError):
    code = "backup_invalid"


@dataclass(frozen=True, slots=True)
class BackupSummary:
    path: Path
    gateway_id: str
    files: int
    bytes: int
    entries: int
    clips: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "backup": str(self.path),
            "gateway_id": self.gateway_id,
            "files": self.files,
            "bytes": self.bytes,
            "audit_entries": self.entries,
            "clips": self.clips,
        }


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    directory: Path
    gateway_id: str
    files: int
    entries: int
    checkpoints: int

    def to_json(self) -> dict[str, Any]:
        return {
            "restored": str(self.directory),
            "config": str(self.directory / CONFIG_NAME),
            "gateway_id": self.gateway_id,
            "files": self.files,
            "audit_entries": self.entries,
            "checkpoints": self.checkpoints,
            "audit_verified": True,
        }


# --------------------------------------------------------------------------- writing


class _SealingWriter(io.RawIOBase):
    """A write-only file object: what tarfile writes is encrypted, frame by frame, to ``out``."""

    def __init__(self, out: IO[bytes], sealer: BackupSealer) -> None:
        self._out = out
        self._sealer = sealer
        self._pending = bytearray()
        out.write(sealer.header)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self._pending += view
        while len(self._pending) > FRAME_BYTES:
            self._out.write(self._sealer.frame(bytes(self._pending[:FRAME_BYTES])))
            del self._pending[:FRAME_BYTES]
        return len(view)

    def finish(self) -> None:
        self._out.write(self._sealer.frame(bytes(self._pending), final=True))
        self._pending.clear()


def _relative(config: GatewayConfig, path: Path, what: str) -> str:
    try:
        return path.resolve().relative_to(config.directory.resolve()).as_posix()
    except ValueError:
        raise BackupLayoutUnsupported(
            f"{what} ({path}) is outside the gateway directory {config.directory}; a backup "
            "takes the directory threshold init made: move the file into it and set a "
            "relative path in threshold.toml"
        ) from None


def _snapshot_database(database: Path) -> Path:
    """A consistent copy of the live database (SQLite's online backup), mode 0600, beside it."""
    fd, name = tempfile.mkstemp(prefix=".backup-", suffix=".db", dir=database.parent)
    os.close(fd)
    copy = Path(name)
    try:
        source = sqlite3.connect(database.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
                target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        copy.unlink(missing_ok=True)
        raise BackupError(f"cannot copy the database {database}: {exc}") from None
    return copy


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_READ_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _files_to_keep(config: GatewayConfig, clips: bool) -> Iterator[Path]:
    """Every file of the gateway directory but the live database, its journals and the
    clips (unless ``clips``); the database comes as a snapshot."""
    database = config.database.resolve()
    skip = {
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
        database.with_name(database.name + "-journal"),
    }
    # Every camera's clips directory (several cameras: one each); without a camera, the
    # default one, which may hold clips from when there was one.
    clip_dirs = {c.clip_dir.resolve() for c in config.cameras if c.clip_dir is not None} or {
        (config.directory / DEFAULT_CLIPS).resolve()
    }
    root = config.directory.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if not clips and here in clip_dirs:
            dirnames.clear()
            continue
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            if path in skip or name.startswith(".backup-") or not path.is_file():
                continue
            yield path


def write_backup(config_path: Path, out: Path, *, clips: bool = False) -> BackupSummary:
    """Write the encrypted backup of the gateway configured at ``config_path`` to ``out``."""
    config = load(config_path)
    if out.exists():
        raise BackupExists(f"{out} exists; a backup never overwrites a file")
    if config_path.resolve().parent != config.directory.resolve():
        raise BackupLayoutUnsupported(f"{config_path} is not in its gateway directory")
    if config_path.name != CONFIG_NAME:
        raise BackupLayoutUnsupported(f"the configuration must be named {CONFIG_NAME}")
    for path, what in (
        (config.key_file, "[gateway] key_file"),
        (config.database, "[gateway] database"),
        (config.api.tls_cert, "[api] tls_cert"),
        (config.api.tls_key, "[api] tls_key"),
    ):
        _relative(config, path, what)
    if not config.database.is_file():
        raise BackupError(f"no database at {config.database}")
    gateway_key = load_signing_key(config.key_file)

    snapshot = _snapshot_database(config.database)
    manifest_files: dict[str, dict[str, Any]] = {}
    total = 0
    partial = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    try:
        conn = sqlite3.connect(snapshot)
        try:
            entries = conn.execute("SELECT COUNT(*) FROM audit_entry").fetchone()[0]
            version = schema_version(conn)
        finally:
            conn.close()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            writer = _SealingWriter(raw, BackupSealer(config.owner_public_key))
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:

                def add(path: Path, name: str) -> None:
                    nonlocal total
                    digest, size = _hash_file(path)
                    info = tarfile.TarInfo(name)
                    info.size = size
                    info.mode = 0o600
                    info.mtime = int(path.stat().st_mtime)
                    with path.open("rb") as f:
                        tar.addfile(info, f)
                    manifest_files[name] = {"sha256": digest, "size": size}
                    total += size

                add(snapshot, _relative(config, config.database, "[gateway] database"))
                for path in _files_to_keep(config, clips):
                    add(path, _relative(config, path, "a file"))
                manifest = {
                    "format": FORMAT,
                    "gateway_id": config.gateway_id,
                    "gateway_public_key": bytes(gateway_key.verify_key).hex(),
                    "schema_version": version,
                    "created_ms": int(time.time() * 1000),
                    "database": _relative(config, config.database, "[gateway] database"),
                    "clips": clips,
                    "files": manifest_files,
                }
                data = json.dumps(manifest, indent=2, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size = len(data)
                info.mode = 0o600
                tar.addfile(info, io.BytesIO(data))
            writer.finish()
            raw.flush()
            os.fsync(raw.fileno())
        os.link(partial, out)  # fails rather than replace a file made meanwhile
    except FileExistsError:
        raise BackupExists(f"{out} exists; a backup never overwrites a file") from None
    except OSError as exc:
        raise BackupError(f"cannot write the backup to {out}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
        snapshot.unlink(missing_ok=True)
    return BackupSummary(out, config.gateway_id, len(manifest_files), total, entries, clips)


# --------------------------------------------------------------------------- restoring


class _OpeningReader(io.RawIOBase):
    """A read-only file object giving the plaintext of an encrypted backup file."""

    def __init__(self, source: IO[bytes], opener: BackupOpener) -> None:
        self._source = source
        self._opener = opener
        self._plain = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._plain:
            chunk = self._source.read(_READ_BYTES)
            if not chunk:
                self._opener.finish()
                return 0
            self._plain += self._opener.feed(chunk)
        n = min(len(buffer), len(self._plain))
        buffer[:n] = self._plain[:n]
        del self._plain[:n]
        return n

    def drain(self) -> None:
        """Read to the end: the backup must end exactly with its final frame."""
        while self.readinto(bytearray(_READ_BYTES)):
            pass


def _check_manifest(root: Path, manifest: dict[str, Any], names: set[str]) -> dict[str, Any]:
    if manifest.get("format") != FORMAT:
        raise BackupInvalid(f"backup format {manifest.get('format')!r}, expected {FORMAT}")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != names:
        raise BackupInvalid("the backup's files differ from its manifest")
    for name, fact in files.items():
        digest, size = _hash_file(root / name)
        if not isinstance(fact, dict) or fact.get("sha256") != digest or fact.get("size") != size:
            raise BackupInvalid(f"{name} differs from the backup's manifest")
    if CONFIG_NAME not in files or manifest.get("database") not in files:
        raise BackupInvalid("the backup has no threshold.toml or no database")
    return manifest


def _make_private(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o700)
        for name in filenames:
            os.chmod(Path(dirpath) / name, 0o600)
        dirnames.sort()


def restore_backup(archive: Path, owner_key: SigningKey, target: Path) -> RestoreSummary:
    """Restore ``archive`` into ``target`` (which must not exist, or be an empty directory)."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RestoreTargetNotEmpty(f"{target} is not empty; restore into a new directory")
    if not archive.is_file():
        raise BackupError(f"no backup at {archive}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.restoring-", dir=target.parent))
    try:
        names: set[str] = set()
        manifest: dict[str, Any] | None = None
        with archive.open("rb") as source:
            reader = _OpeningReader(source, BackupOpener(owner_key))
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    if member.name == MANIFEST and member.isfile():
                        extracted = tar.extractfile(member)
                        assert extracted is not None
                        try:
                            manifest = json.loads(extracted.read(1 << 20))
                        except ValueError:
                            raise BackupInvalid("the backup's manifest is not JSON") from None
                        continue
                    if not member.isfile():
                        raise BackupInvalid(f"the backup holds {member.name!r}, not a file")
                    try:
                        tar.extract(member, staging, filter="data")
                    except tarfile.FilterError as exc:
                        raise BackupInvalid(f"the backup holds an unsafe path: {exc}") from None
                    names.add(member.name)
            reader.drain()
        if not isinstance(manifest, dict):
            raise BackupInvalid("the backup has no manifest")
        _check_manifest(staging, manifest, names)
        _make_private(staging)
        summary = _verify_restored(staging, manifest, len(names))
        if target.exists():
            _move_into(staging, target)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreSummary(
        target, summary.gateway_id, summary.files, summary.entries, summary.checkpoints
    )


def _move_into(staging: Path, target: Path) -> None:
    """``target`` is an empty directory (a mount point, a StateDirectory): move the contents."""
    for child in staging.iterdir():
        os.rename(child, target / child.name)
    os.chmod(target, 0o700)
    staging.rmdir()


def _verify_restored(root: Path, manifest: dict[str, Any], files: int) -> RestoreSummary:
    config = load(root / CONFIG_NAME)
    if config.gateway_id != manifest.get("gateway_id"):
        raise BackupInvalid("the restored configuration names another gateway than the backup")
    key = load_signing_key(config.key_file)
    public = bytes(key.verify_key)
    if public.hex() != manifest.get("gateway_public_key"):
        raise BackupInvalid("the restored gateway key is not the one the backup recorded")
    try:
        with contextlib.closing(open_read_only(str(config.database))) as conn:
            report = verify_log(
                conn,
                public,
                key_file=commitment_key.key_path(config.database),
                clip_files=False,
            )
    except StoreError as exc:
        raise BackupInvalid(f"the restored database cannot be read: {exc}") from None
    if not report.ok:
        raise BackupInvalid(
            f"the restored audit log does not verify: {report.problem} "
            f"(entry {report.first_bad_index})"
        )
    return RestoreSummary(root, config.gateway_id, files, report.entries, report.checkpoints)
