"""Backup and restore (docs/operations.md): a gateway that served visits is backed up while it
runs, restored into a fresh directory with the owner's key, and the restored gateway is the
same gateway: its tickets work, a spent use stays spent, its log verifies, its lock pairing
holds (the virtual Nuki's authorizations came along). Real HTTPS, real SQLite files, the
virtual lock over bleak/Bumble, the real CLI."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from ble.nuki.frames import Command
from ble.nuki.messages import LockAction
from gateway.app.backup import (
    BackupExists,
    BackupInvalid,
    RestoreTargetNotEmpty,
    restore_backup,
    write_backup,
)
from gateway.clients.lan import ApiProblem, GatewayClient
from gateway.trust.backup_seal import (
    FRAME_BYTES,
    BackupSealer,
    BackupSealError,
    BackupTruncated,
    WrongOwnerKey,
)
from tests.support.cli import run_cli
from tests.support.service import (
    GATEWAY_ID,
    WAIT,
    make_ticket,
    running_harness,
    start_gateway,
)


def _write_key(path: Path, key: SigningKey) -> None:
    from gateway.trust.base64url import b64u_encode

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(b64u_encode(bytes(key)) + "\n")


async def test_a_restored_gateway_is_the_same_gateway(tmp_path: Path) -> None:
    archive = tmp_path / "home.backup"
    async with running_harness(tmp_path / "gw") as h:
        owner = h.keys.owner
        once = h.ticket(package_codes=("A",))
        twice = h.ticket(package_codes=("B",), uses=2)
        for t, code in ((once, "A"), (twice, "B")):
            opened = await h.open(t, package_code=code)
            await h.done(t, opened.body["session"])
        # While the gateway runs: SQLite's online backup takes a consistent copy.
        summary = await asyncio.to_thread(write_backup, h.directory / "threshold.toml", archive)
        assert summary.entries > 0
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert archive.read_bytes()[:20] == b"threshold-backup/v1\n"
    assert b"gateway.key" not in archive.read_bytes()  # encrypted, names included

    key_file = tmp_path / "owner.key"
    _write_key(key_file, owner)
    restored = tmp_path / "replacement"
    result = run_cli(
        "restore", "--in", str(archive), "--owner-key", str(key_file), "--dir", str(restored)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["audit_verified"] is True
    assert report["gateway_id"] == GATEWAY_ID
    for path in restored.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path

    verify = run_cli("audit", "verify", "--db", str(restored / "threshold.db"), "--no-clip-files")
    assert verify.returncode == 0, verify.stdout
    assert json.loads(verify.stdout)["ok"] is True

    gateway = await start_gateway(restored / "threshold.toml")
    client = GatewayClient(gateway.url, fingerprint=gateway.fingerprint, timeout_s=WAIT)
    try:
        with pytest.raises(ApiProblem) as spent:
            await client.open(
                gateway_id=GATEWAY_ID,
                ticket=once.token,
                jti=once.jti,
                holder=once.holder,
                door="front",
                package_code="A",
            )
        assert spent.value.code == "uses_exhausted"
        opened = await client.open(
            gateway_id=GATEWAY_ID,
            ticket=twice.token,
            jti=twice.jti,
            holder=twice.holder,
            door="front",
            package_code="B",
        )
        assert opened.status == 201
        # the lock paired with the old gateway obeys the restored one
        assert gateway.locks is not None
        sim = gateway.locks.simulated["front"]
        assert sim.lock.count(Command.LOCK_ACTION, LockAction.UNLOCK) == 1
        await client.done(
            gateway_id=GATEWAY_ID,
            session_id=opened.body["session"],
            jti=twice.jti,
            holder=twice.holder,
        )
    finally:
        await client.close()
        async with asyncio.timeout(WAIT):
            await gateway.stop()


# -- refusals: nothing restored, nothing left behind ------------------------------------------


@pytest.fixture
async def backed_up(tmp_path: Path) -> tuple[Path, SigningKey]:
    archive = tmp_path / "home.backup"
    async with running_harness(tmp_path / "gw") as h:
        t = make_ticket(h.keys.owner)
        opened = await h.open(t, package_code="PKG-1")
        await h.done(t, opened.body["session"])
        await asyncio.to_thread(write_backup, h.directory / "threshold.toml", archive)
        return archive, h.keys.owner


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if "restoring" in p.name)


def test_a_backup_never_overwrites(backed_up: tuple[Path, SigningKey], tmp_path: Path) -> None:
    archive, _ = backed_up
    before = archive.read_bytes()
    with pytest.raises(BackupExists):
        write_backup(tmp_path / "gw" / "threshold.toml", archive)
    assert archive.read_bytes() == before


def test_another_key_cannot_restore(backed_up: tuple[Path, SigningKey], tmp_path: Path) -> None:
    archive, _ = backed_up
    with pytest.raises(WrongOwnerKey):
        restore_backup(archive, SigningKey.generate(), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("cut", [1, 17, FRAME_BYTES // 2])
def test_a_truncated_backup_restores_nothing(
    backed_up: tuple[Path, SigningKey], tmp_path: Path, cut: int
) -> None:
    archive, owner = backed_up
    short = tmp_path / "short.backup"
    short.write_bytes(archive.read_bytes()[:-cut])
    with pytest.raises((BackupTruncated, BackupSealError)):
        restore_backup(short, owner, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert _leftovers(tmp_path) == []


def test_an_altered_backup_restores_nothing(
    backed_up: tuple[Path, SigningKey], tmp_path: Path
) -> None:
    archive, owner = backed_up
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    altered = tmp_path / "altered.backup"
    altered.write_bytes(bytes(data))
    with pytest.raises(BackupSealError):
        restore_backup(altered, owner, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert _leftovers(tmp_path) == []


def test_restore_refuses_a_directory_in_use(
    backed_up: tuple[Path, SigningKey], tmp_path: Path
) -> None:
    archive, owner = backed_up
    target = tmp_path / "busy"
    target.mkdir()
    (target / "threshold.toml").write_text("# someone else's\n")
    with pytest.raises(RestoreTargetNotEmpty):
        restore_backup(archive, owner, target)
    assert (target / "threshold.toml").read_text() == "# someone else's\n"


def _forged(owner: SigningKey, members: dict[str, bytes]) -> bytes:
    """A backup anyone who knows the owner's PUBLIC key can make."""
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sealer = BackupSealer(bytes(owner.verify_key))
    return sealer.header + sealer.frame(plain.getvalue()[:FRAME_BYTES], final=True)


def test_a_forged_backup_cannot_write_outside_the_target(tmp_path: Path) -> None:
    owner = SigningKey.generate()
    forged = tmp_path / "forged.backup"
    forged.write_bytes(_forged(owner, {"../escaped": b"x", "MANIFEST.json": b"{}"}))
    with pytest.raises(BackupInvalid):
        restore_backup(forged, owner, tmp_path / "sub" / "new")
    assert not (tmp_path / "sub" / "escaped").exists()
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "sub" / "new").exists()


def test_a_file_the_manifest_does_not_name_is_refused(
    backed_up: tuple[Path, SigningKey], tmp_path: Path
) -> None:
    _, owner = backed_up
    forged = tmp_path / "forged.backup"
    manifest = {"format": 1, "files": {"threshold.toml": {"sha256": "0" * 64, "size": 1}}}
    forged.write_bytes(
        _forged(owner, {"threshold.toml": b"x", "MANIFEST.json": json.dumps(manifest).encode()})
    )
    with pytest.raises(BackupInvalid):
        restore_backup(forged, owner, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert _leftovers(tmp_path) == []
