"""The one private-file writer (groundwork.files): whole, exact mode, never half a file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from groundwork.files import PUBLIC, write_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o277], ids=["umask-000", "umask-022", "umask-277"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_a_new_file_is_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    key = tmp_path / "gateway.key"
    write_file(key, b"secret\n")
    assert key.read_bytes() == b"secret\n"
    assert mode(key) == 0o600


def test_a_new_file_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "gateway.key"
    write_file(key, b"first")
    with pytest.raises(FileExistsError):
        write_file(key, b"second")
    assert key.read_bytes() == b"first"


def test_public_files_get_0644(tmp_path: Path, umask: int) -> None:
    cert = tmp_path / "tls.crt"
    write_file(cert, b"cert", mode=PUBLIC)
    assert mode(cert) == 0o644


def test_replace_swaps_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    state = tmp_path / "lock.json"
    write_file(state, b"old", replace=True)
    write_file(state, b"new" * 10_000, replace=True)
    assert state.read_bytes() == b"new" * 10_000
    assert mode(state) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock.json"]


def test_replace_does_not_write_into_a_stale_world_readable_temporary(tmp_path: Path) -> None:
    # A crash left lock.json.tmp behind with a wide mode; reusing it would keep that mode.
    state = tmp_path / "lock.json"
    stale = tmp_path / "lock.json.tmp"
    stale.write_bytes(b"half")
    stale.chmod(0o666)
    write_file(state, b"whole", replace=True)
    assert state.read_bytes() == b"whole"
    assert mode(state) == 0o600
    assert not stale.exists()


def test_a_failed_replace_keeps_the_old_file(tmp_path: Path) -> None:
    state = tmp_path / "lock.json"
    write_file(state, b"old", replace=True)
    with pytest.raises(TypeError):
        write_file(state, "not bytes", replace=True)  # type: ignore[arg-type]
    assert state.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock.json"]
