"""Seal keys made ahead (gateway.trust.seal.SealKey, gateway.app.seal_keys.SealKeyPool): the
boxes are libsodium sealed boxes the owner opens with the standard API, and no ephemeral key
ever seals two entries, however many threads take keys at once."""

from __future__ import annotations

import os
import threading

import pytest
from nacl.public import SealedBox
from nacl.signing import SigningKey

from gateway.app.seal_keys import SealKeyPool
from gateway.trust.seal import SEAL_OVERHEAD, SMALLEST_CLASS, Sealer, SealError, Unsealer, unpad

WAIT_S = 10.0


def _owner() -> tuple[SigningKey, Sealer]:
    owner = SigningKey(os.urandom(32))
    return owner, Sealer(bytes(owner.verify_key))


def test_a_box_from_a_key_made_ahead_is_a_standard_sealed_box() -> None:
    owner, sealer = _owner()
    entry = b'{"b":{"door":"front"},"i":7,"k":"session.granted","t":1,"v":1}'
    key = sealer.fresh_key()
    sealed = sealer.seal(entry, key)
    assert len(sealed) == SMALLEST_CLASS + SEAL_OVERHEAD
    assert sealed[:32] == key.public
    # libsodium's own crypto_box_seal_open, through PyNaCl's public API, not our code
    standard = SealedBox(owner.to_curve25519_private_key())
    assert unpad(standard.decrypt(sealed)) == entry
    assert Unsealer(bytes(owner)).open(sealed) == entry
    assert repr(key.box_key) not in repr(key)  # a box key is secret: never in a log line


def test_a_key_made_for_another_recipient_is_refused() -> None:
    _, sealer = _owner()
    _, other = _owner()
    with pytest.raises(SealError):
        sealer.seal(b"{}", other.fresh_key())


def test_the_pool_fills_in_the_background_and_hands_each_key_out_once() -> None:
    owner, sealer = _owner()
    pool = SealKeyPool(sealer, depth=16)
    pool.start()
    try:
        assert pool.wait_ready(16, WAIT_S)
        assert pool.ready == 16
        sealed = [pool.seal(b'{"n":%d}' % i) for i in range(100)]
    finally:
        pool.close()
    assert len({box[:32] for box in sealed}) == 100  # a fresh ephemeral key per entry
    opener = Unsealer(bytes(owner))
    assert [opener.open(box) for box in sealed] == [b'{"n":%d}' % i for i in range(100)]


def test_threads_taking_keys_at_once_never_share_one() -> None:
    # The attack on a pool: two appends racing for the same precomputed key would seal two
    # entries with one ephemeral key and one nonce (a keystream reused).
    _, sealer = _owner()
    pool = SealKeyPool(sealer, depth=8)
    pool.start()
    taken: list[bytes] = []
    guard = threading.Lock()
    go = threading.Barrier(6)

    def take_many() -> None:
        go.wait(WAIT_S)
        mine = [pool.take().public for _ in range(150)]
        with guard:
            taken.extend(mine)

    threads = [threading.Thread(target=take_many) for _ in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S * 3)
            assert not thread.is_alive()
    finally:
        pool.close()
    assert len(taken) == 900
    assert len(set(taken)) == 900


def test_a_closed_or_unstarted_pool_makes_keys_on_the_spot_and_keeps_none() -> None:
    owner, sealer = _owner()
    idle = SealKeyPool(sealer)
    assert Unsealer(bytes(owner)).open(idle.seal(b"{}")) == b"{}"
    pool = SealKeyPool(sealer, depth=4)
    pool.start()
    assert pool.wait_ready(4, WAIT_S)
    pool.close()
    assert pool.ready == 0  # no secret box keys left behind in memory
    assert not pool.wait_ready(1, 0.01)
    assert Unsealer(bytes(owner)).open(pool.seal(b"{}")) == b"{}"
    with pytest.raises(RuntimeError):
        pool.start()
    with pytest.raises(ValueError, match="at least one"):
        SealKeyPool(sealer, depth=0)


def test_the_pool_refills_in_batches_from_half_its_depth() -> None:
    # The refilling thread is woken only once the pool is down to half (then fills it up):
    # not for every key taken, which made it compete with each append for the GIL.
    _, sealer = _owner()
    pool = SealKeyPool(sealer, depth=16)
    pool.start()
    try:
        assert pool.wait_ready(16, WAIT_S)
        for _ in range(7):
            pool.take()
        assert pool.ready == 9  # above half: nobody was woken to refill
        pool.take()  # down to half: refilled, up to full
        assert pool.wait_ready(16, WAIT_S)
        assert pool.ready == 16
    finally:
        pool.close()
