"""A fault only a Nuki has, seen through the real bleak stack: a refused pairing. The
invariants every vendor keeps (a jammed bolt, a link dropped mid-unlock, unreadable replies
before and after the point of no return, a slow lock or motor, a lock out of range) are in
tests/fault/test_lock_faults.py, over the Nuki at each model and the SwitchBot Lock."""

from __future__ import annotations

import pytest

from tests.support.nuki import NukiBench, nuki_bench

__all__ = ["nuki_bench"]


async def test_refused_pairing_is_a_typed_error(nuki_bench: NukiBench) -> None:
    from ble.nuki.errors import NukiPairingRefused

    nuki_bench.lock.faults.refuse_pairing = True
    with pytest.raises(NukiPairingRefused) as info:
        await nuki_bench.pair()
    assert "full" in info.value.message
    assert nuki_bench.lock.authorizations == {}
