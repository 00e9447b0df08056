"""Fuzzing the backup reader (:mod:`gateway.trust.backup_seal`): ``threshold restore`` opens a
file that may come from anywhere (the files interface of docs/threat-model.md). Fed in any
pieces, altered, cut short or with bytes after its end, a backup yields only
:class:`~gateway.trust.backup_seal.BackupSealError` (or a subclass), never another exception,
and never plaintext from a backup that was changed.
"""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from gateway.trust.backup_seal import BackupOpener, BackupSealer, BackupSealError
from tests.fuzz.fuzzing import FUZZ, only

OWNER = SigningKey(bytes(range(2, 34)))
PLAIN = [b"gateway.key", b"x" * 300, b""]


def backup() -> bytes:
    sealer = BackupSealer(bytes(OWNER.verify_key))
    frames = [sealer.frame(p, final=i == len(PLAIN) - 1) for i, p in enumerate(PLAIN)]
    return sealer.header + b"".join(frames)


GOOD = backup()


def restore(data: bytes, cuts: list[int]) -> bytes:
    opener = BackupOpener(OWNER)
    out = b""
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for start, end in itertools.pairwise(edges):
        out += opener.feed(data[start:end])
    opener.finish()
    return out


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(GOOD)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= draw(st.integers(1, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=8))


@FUZZ
@given(damaged() | st.binary(max_size=300), st.lists(st.integers(0, 10_000), max_size=6))
def test_a_damaged_backup_raises_only_backup_errors(data: bytes, cuts: list[int]) -> None:
    plaintext = only(BackupSealError, lambda: restore(data, cuts))
    if plaintext is not None:
        assert data == GOOD
        assert plaintext == b"".join(PLAIN)


def test_the_backup_restores_in_any_pieces() -> None:
    """The control: the untouched backup opens, however it is cut."""
    assert restore(GOOD, [1, 20, 21, 150]) == b"".join(PLAIN)
