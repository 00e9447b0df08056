"""Faults injected into the virtual Nuki lock, seen through the real bleak stack: a jammed
bolt, a link dropped in the middle of an unlock, corrupted replies, a slow lock, a lock out
of range. The lock's command log proves what was (not) sent."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from ble.driver import LockState
from ble.errors import (
    LockJammed,
    LockNotFound,
    LockOutcomeUnknown,
    LockProtocolError,
    LockTimeout,
)
from ble.nuki.frames import Command
from ble.nuki.messages import LockAction
from tests.support.nuki import TEST_TIMEOUTS, NukiBench, StatusRecorder, nuki_bench

__all__ = ["nuki_bench"]


async def test_jammed_motor_gives_jammed_state_and_typed_error(nuki_bench: NukiBench) -> None:
    driver = nuki_bench.driver(await nuki_bench.pair())
    recorder = StatusRecorder()
    driver.subscribe(recorder)
    nuki_bench.lock.faults.jam_motor = True
    try:
        with pytest.raises(LockJammed) as info:
            await driver.unlock()
        assert "jammed" in info.value.message
        await recorder.wait_for(lambda s: s.lock is LockState.JAMMED)
        assert (await driver.status()).lock is LockState.JAMMED
    finally:
        await driver.close()
    assert nuki_bench.lock.count(Command.LOCK_ACTION, LockAction.UNLOCK) == 1


async def test_link_dropped_mid_unlock_reads_once_and_never_resends(
    nuki_bench: NukiBench,
) -> None:
    driver = nuki_bench.driver(await nuki_bench.pair())
    lock = nuki_bench.lock
    lock.faults.drop_link_on_action = 1
    try:
        with pytest.raises(LockOutcomeUnknown) as info:
            await driver.unlock()
    finally:
        await driver.close()
    # The motor did turn: the read found it moving or done, and said so.
    assert info.value.status is not None
    assert info.value.status.lock in (LockState.UNLOCKING, LockState.UNLOCKED)
    assert "not sent again" in info.value.message
    assert lock.count(Command.LOCK_ACTION, LockAction.UNLOCK) == 1
    assert lock.count(Command.LOCK_ACTION) == 1
    assert lock.count_requests(Command.KEYTURNER_STATES) == 1


async def test_corrupted_crc_on_a_state_read_is_retried_once(nuki_bench: NukiBench) -> None:
    driver = nuki_bench.driver(await nuki_bench.pair())
    lock = nuki_bench.lock
    lock.faults.corrupt_crc_replies = 1
    try:
        assert (await driver.status()).lock is LockState.LOCKED
        assert lock.count_requests(Command.KEYTURNER_STATES) == 2
        lock.faults.corrupt_crc_replies = 2
        with pytest.raises(LockProtocolError):
            await driver.status()
        assert lock.count_requests(Command.KEYTURNER_STATES) == 4
    finally:
        await driver.close()


async def test_corrupted_crc_after_the_unlock_is_not_retried(nuki_bench: NukiBench) -> None:
    driver = nuki_bench.driver(await nuki_bench.pair())
    lock = nuki_bench.lock
    lock.faults.corrupt_crc_replies = 1
    lock.faults.corrupt_only = Command.STATUS  # the ACCEPTED that follows the unlock
    try:
        with pytest.raises(LockOutcomeUnknown) as info:
            await driver.unlock()
    finally:
        await driver.close()
    assert info.value.status is not None
    assert lock.count(Command.LOCK_ACTION, LockAction.UNLOCK) == 1
    assert lock.count_requests(Command.CHALLENGE) == 1
    assert lock.count_requests(Command.KEYTURNER_STATES) == 1


async def test_corrupted_challenge_fails_the_action_without_sending_it(
    nuki_bench: NukiBench,
) -> None:
    driver = nuki_bench.driver(await nuki_bench.pair())
    lock = nuki_bench.lock
    lock.faults.corrupt_crc_replies = 1
    lock.faults.corrupt_only = Command.CHALLENGE
    try:
        with pytest.raises(LockProtocolError) as info:
            await driver.unlock()
        assert not isinstance(info.value, LockOutcomeUnknown)
    finally:
        await driver.close()
    assert lock.count(Command.LOCK_ACTION) == 0
    assert lock.count_requests(Command.CHALLENGE) == 1


async def test_slow_lock_times_out_within_the_step_timeout(nuki_bench: NukiBench) -> None:
    timeouts = dataclasses.replace(TEST_TIMEOUTS, step_s=0.4)
    driver = nuki_bench.driver(await nuki_bench.pair(), timeouts)
    loop = asyncio.get_running_loop()
    try:
        await driver.status()  # connected: what follows measures only the slow reply
        nuki_bench.lock.faults.reply_delay_s = 3.0
        started = loop.time()
        with pytest.raises(LockTimeout):
            await driver.status()
        assert loop.time() - started < timeouts.step_s + 1.0
        started = loop.time()
        with pytest.raises(LockTimeout):
            await driver.unlock()
        assert loop.time() - started < timeouts.step_s * 2 + timeouts.connect_s
    finally:
        await driver.close()
    assert nuki_bench.lock.count(Command.LOCK_ACTION) == 0


async def test_motor_slower_than_allowed_ends_as_outcome_unknown(nuki_bench: NukiBench) -> None:
    timeouts = dataclasses.replace(TEST_TIMEOUTS, motor_s=0.3)
    driver = nuki_bench.driver(await nuki_bench.pair(), timeouts)
    nuki_bench.lock.motor_seconds = 2.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(LockOutcomeUnknown) as info:
            await driver.unlock()
    finally:
        await driver.close()
    assert loop.time() - started < timeouts.scan_s + timeouts.connect_s
    assert info.value.status is not None
    assert info.value.status.lock is LockState.UNLOCKING
    assert nuki_bench.lock.count(Command.LOCK_ACTION) == 1


async def test_lock_out_of_range_is_not_found_within_the_scan_timeout(
    nuki_bench: NukiBench,
) -> None:
    timeouts = dataclasses.replace(TEST_TIMEOUTS, scan_s=0.5)
    driver = nuki_bench.driver(await nuki_bench.pair(), timeouts)
    await nuki_bench.radio.remove(nuki_bench.peripheral.device)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(LockNotFound) as info:
            await driver.unlock()
    finally:
        await driver.close()
    assert loop.time() - started < timeouts.scan_s + 2.5
    assert "out of range" in info.value.message


async def test_refused_pairing_is_a_typed_error(nuki_bench: NukiBench) -> None:
    from ble.nuki.errors import NukiPairingRefused

    nuki_bench.lock.faults.refuse_pairing = True
    with pytest.raises(NukiPairingRefused) as info:
        await nuki_bench.pair()
    assert "full" in info.value.message
    assert nuki_bench.lock.authorizations == {}
