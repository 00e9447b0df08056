"""The verifier's fast paths agree with the slow, naming ones: the row check (with its
HMAC written out over hashlib) with ``check_row``, the bulk tree with the incremental one."""

from __future__ import annotations

import hmac
import os
import random

import pytest

from store import commitment, merkle
from store.commitment import CommitmentKey, RowStatus


def _row(key: CommitmentKey, index: int, visit: bytes | None) -> tuple[int, int, str, str, bytes]:
    time_ms, kind, body = 1_790_000_000_000 + index, "session.open", '{"n":' + str(index) + "}"
    entry_key = key.entry_key(index)
    tags = commitment.tags(entry_key, time_ms, kind, body)
    box = os.urandom(512 + 48)
    if visit is None:
        leaf = commitment.format2_leaf(tags, box)
    else:
        leaf = commitment.format3_leaf(tags, commitment.visit_tag(visit, index), box)
    return time_ms, index, kind, body, leaf


@pytest.mark.parametrize("visit", [None, b"v" * 32])
def test_the_fast_row_check_says_verified_exactly_when_check_row_does(
    visit: bytes | None,
) -> None:
    key = CommitmentKey(os.urandom(32))
    fast = commitment.fast_row_check(key)
    rng = random.Random(7)
    for index in range(200):
        time_ms, idx, kind, body, leaf = _row(key, index, visit)
        variants: list[tuple[object, object, object, object, object, bytes]] = [
            (idx, time_ms, kind, body, 1, leaf),
            (idx + 1, time_ms, kind, body, 1, leaf),
            (idx, time_ms + 1, kind, body, 1, leaf),
            (idx, str(time_ms), kind, body, 1, leaf),
            (idx, time_ms, "session.closed", body, 1, leaf),
            (idx, time_ms, kind, body + " ", 1, leaf),
            (idx, time_ms, kind, body, 0, leaf),
            (idx, time_ms, kind, body, 1, leaf[:-1]),
            (idx, time_ms, kind, body, 1, bytes([leaf[0] ^ 1]) + leaf[1:]),
        ]
        flip = rng.randrange(1, 49)
        variants.append(
            (idx, time_ms, kind, body, 1, leaf[:flip] + bytes([leaf[flip] ^ 1]) + leaf[flip + 1 :])
        )
        for i, time_, kind_, body_, sealed, leaf_ in variants:
            assert isinstance(i, int)
            slow = commitment.check_row(i, time_, kind_, body_, sealed, leaf_, key)
            assert fast(i, time_, kind_, body_, sealed, leaf_) == (
                slow.status is RowStatus.VERIFIED
            ), (i, time_, kind_, body_, sealed)


def test_the_written_out_hmac_is_hmac() -> None:
    """The fast path's RFC 2104 over hashlib gives hmac.digest's tags (through the row check:
    a tag computed by commitment.tags verifies only if both agree)."""
    for _ in range(50):
        key = CommitmentKey(os.urandom(32))
        index = random.randrange(2**40)
        entry_key = key.entry_key(index)
        assert entry_key == hmac.digest(
            key.secret, b"threshold-entry-key/v1" + index.to_bytes(8, "big"), "sha256"
        )
        time_ms, _, kind, body, leaf = _row(key, index, None)
        assert commitment.fast_row_check(key)(index, time_ms, kind, body, 1, leaf)


def test_the_appenders_tagger_gives_the_defined_key_and_tags() -> None:
    """commitment.entry_tagger (the append's HMAC over hashlib) is entry_key and tags."""
    rng = random.Random(11)
    for _ in range(200):
        key = CommitmentKey(os.urandom(32))
        index, time_ms = rng.randrange(2**53), rng.randrange(2**53)
        kind = rng.choice(["session.granted", "clip.recorded", "a.b"])
        body = '{"s":"' + "é" * rng.randrange(40) + '"}'
        entry_key = key.entry_key(index)
        assert commitment.entry_tagger(key)(index, time_ms, kind, body) == (
            entry_key,
            commitment.tags(entry_key, time_ms, kind, body),
        )


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 9, 100, 257])
def test_the_bulk_tree_is_the_incremental_tree(size: int) -> None:
    leaves = [merkle.leaf_hash(os.urandom(8)) for _ in range(size)]
    slow = merkle.MemoryTree(leaves)
    bulk = merkle.MemoryTree.from_leaf_level(b"".join(leaves))
    assert bulk.size == slow.size
    assert bulk.root() == slow.root()
    assert bulk.height == slow.height or size == 0
    for level in range(slow.height):
        assert bulk.level_bytes(level) == slow.level_bytes(level)
    for old in range(size + 1):
        assert merkle.consistency_proof(bulk, old, size) == merkle.consistency_proof(
            slow, old, size
        )
