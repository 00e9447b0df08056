"""The driver invariants of docs/locks.md under injected faults, once per vendor (the Nuki
at each model, the SwitchBot Lock), through the real bleak stack: a jammed bolt, a link
dropped in the middle of an unlock, unreadable replies before and after the point of no
return, a slow lock, a slow motor, a lock out of range. Each lock's own command log proves
what was (not) sent."""

from __future__ import annotations

import asyncio

import pytest

from ble.driver import LockState
from ble.errors import (
    LockJammed,
    LockNotFound,
    LockOutcomeUnknown,
    LockProtocolError,
    LockTimeout,
)
from tests.support.locks import LockBench, lock_bench
from tests.support.nuki import TEST_TIMEOUTS, StatusRecorder

__all__ = ["lock_bench"]


async def test_jammed_motor_gives_jammed_state_and_typed_error(lock_bench: LockBench) -> None:
    driver = await lock_bench.driver()
    recorder = StatusRecorder()
    driver.subscribe(recorder)
    lock_bench.view.faults.jam_motor = True
    try:
        with pytest.raises(LockJammed) as info:
            await driver.unlock()
        assert "jammed" in info.value.message
        await recorder.wait_for(lambda s: s.lock is LockState.JAMMED)
        assert (await driver.status()).lock is LockState.JAMMED
    finally:
        await driver.close()
    assert lock_bench.view.unlocks() == 1


async def test_link_dropped_mid_unlock_reads_once_and_never_resends(
    lock_bench: LockBench,
) -> None:
    driver = await lock_bench.driver()
    view = lock_bench.view
    view.faults.drop_link_on_action = 1
    try:
        with pytest.raises(LockOutcomeUnknown) as info:
            await driver.unlock()
    finally:
        await driver.close()
    # The motor did turn: the read found it moving or done, and said so.
    assert info.value.status is not None
    assert info.value.status.lock in (LockState.UNLOCKING, LockState.UNLOCKED)
    assert "not sent again" in info.value.message
    assert view.unlocks() == 1
    assert view.actions() == 1
    assert view.state_reads() == 1


async def test_an_unreadable_state_reply_is_asked_for_once_more(lock_bench: LockBench) -> None:
    driver = await lock_bench.driver()
    view = lock_bench.view
    view.garble_state_replies(1)
    try:
        assert (await driver.status()).lock is LockState.LOCKED
        assert view.state_reads() == 2
        view.garble_state_replies(2)
        with pytest.raises(LockProtocolError):
            await driver.status()
        assert view.state_reads() == 4
    finally:
        await driver.close()


async def test_an_unreadable_reply_after_the_unlock_is_not_retried(lock_bench: LockBench) -> None:
    driver = await lock_bench.driver()
    view = lock_bench.view
    view.garble_action_reply()
    try:
        with pytest.raises(LockOutcomeUnknown) as info:
            await driver.unlock()
    finally:
        await driver.close()
    assert info.value.status is not None
    assert view.unlocks() == 1
    assert view.state_reads() == 1


async def test_slow_lock_times_out_within_the_step_timeout(lock_bench: LockBench) -> None:
    step_s = 0.4
    driver = await lock_bench.driver(step_s=step_s)
    loop = asyncio.get_running_loop()
    try:
        await driver.status()  # connected: what follows measures only the slow reply
        lock_bench.view.faults.reply_delay_s = 3.0
        started = loop.time()
        with pytest.raises(LockTimeout):
            await driver.status()
        assert loop.time() - started < step_s + 1.0
        started = loop.time()
        with pytest.raises(LockTimeout):
            await driver.unlock()
        assert loop.time() - started < step_s * 2 + TEST_TIMEOUTS.connect_s
    finally:
        await driver.close()
    assert lock_bench.view.actions() == 0


async def test_motor_slower_than_allowed_ends_as_outcome_unknown(lock_bench: LockBench) -> None:
    driver = await lock_bench.driver(motor_s=0.3)
    lock_bench.view.set_motor_seconds(2.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(LockOutcomeUnknown) as info:
            await driver.unlock()
    finally:
        await driver.close()
    assert loop.time() - started < TEST_TIMEOUTS.scan_s + TEST_TIMEOUTS.connect_s
    assert info.value.status is not None
    assert info.value.status.lock is LockState.UNLOCKING
    assert lock_bench.view.actions() == 1


async def test_lock_out_of_range_is_not_found_within_the_scan_timeout(
    lock_bench: LockBench,
) -> None:
    scan_s = 0.5
    driver = await lock_bench.driver(scan_s=scan_s)
    await lock_bench.out_of_range()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(LockNotFound) as info:
            await driver.unlock()
    finally:
        await driver.close()
    assert loop.time() - started < scan_s + 2.5
    assert "out of range" in info.value.message


async def test_a_garbled_first_reply_fails_the_action_without_sending_it(
    lock_bench: LockBench,
) -> None:
    """Before the point of no return (the Nuki's challenge, the SwitchBot Lock's IV)
    nothing was sent: a typed protocol error, not an unknown outcome."""
    driver = await lock_bench.driver()
    view = lock_bench.view
    view.garble_first_reply()
    try:
        with pytest.raises(LockProtocolError) as info:
            await driver.unlock()
        assert not isinstance(info.value, LockOutcomeUnknown)
    finally:
        await driver.close()
    assert view.actions() == 0
