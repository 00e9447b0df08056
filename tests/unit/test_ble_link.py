"""The vendor-neutral BLE link (ble/link.py), against a real Bumble GATT peripheral on the
in-process virtual radio, through real bleak and bleak-retry-connector: one exchange loop,
subscriptions on every connect, idle disconnect, the operation lock, typed errors for a step
that overruns, a dropped link and an unreadable frame.

The peripheral (tests/support/bumble.py) indicates back every write to its echo
characteristic, so an exchange here is "send, expect the echo"."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ble.bumble_backend import BumbleClient, BumbleScanner, VirtualRadio
from ble.errors import LinkLost, LockProtocolError, LockTimeout, StepTimedOut
from ble.exchange import SendFrame
from ble.link import BleakTransport, Channel, ExchangeProgress, LinkTimeouts, LockLink
from tests.support.bumble import (
    ECHO_CHAR_UUID,
    WAIT,
    EchoPeripheral,
    virtual_radio,
)

__all__ = ["virtual_radio"]

ADDRESS = "F0:00:00:00:00:11"
TIMEOUTS = LinkTimeouts(scan_s=5.0, connect_s=10.0, step_s=3.0, idle_disconnect_s=60.0)
GARBAGE = b"\xff"


class PieceFramer:
    """Each indication is one frame; :data:`GARBAGE` is unreadable."""

    def feed(self, piece: bytes) -> list[bytes]:
        if piece == GARBAGE:
            raise LockProtocolError("unreadable test frame")
        return [piece]

    def reset(self) -> None:
        pass


ECHO = Channel(ECHO_CHAR_UUID, PieceFramer)


class EchoExchange:
    """Send each of ``frames``; expect ``replies`` frames back (the echoes, or more than the
    peripheral will ever send, to make a step overrun). The first frame can be the action."""

    def __init__(self, *frames: bytes, replies: int | None = None, action: bool = False) -> None:
        self.frames = frames
        self.expected = len(frames) if replies is None else replies
        self.action = action
        self.received: list[bytes] = []
        self.started = asyncio.Event()

    @property
    def done(self) -> bool:
        return len(self.received) >= self.expected

    def start(self) -> Sequence[object]:
        self.started.set()
        return [
            SendFrame(frame, is_action=self.action and i == 0)
            for i, frame in enumerate(self.frames)
        ]

    def receive(self, frame: bytes) -> Sequence[object]:
        self.received.append(frame)
        return [("heard", frame)]


def transport(radio: VirtualRadio) -> BleakTransport:
    return BleakTransport(
        scanner_backend=BumbleScanner,
        client_backend=BumbleClient,
        options={"bumble_adapter": radio.adapter},
    )


def link(radio: VirtualRadio, timeouts: LinkTimeouts = TIMEOUTS) -> LockLink:
    return LockLink(ADDRESS, ECHO, transport(radio), timeouts, "link test")


async def test_one_exchange_loop_writes_feeds_and_hands_back_events(
    virtual_radio: VirtualRadio,
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    handle = link(virtual_radio)
    heard: list[object] = []
    try:
        async with handle.operation():
            events = await handle.run(EchoExchange(b"one", b"two"), heard.append)
    finally:
        await handle.close()
    assert heard == [("heard", b"one"), ("heard", b"two")]
    assert [e for e in events if isinstance(e, SendFrame)] == [
        SendFrame(b"one"),
        SendFrame(b"two"),
    ]
    assert (handle.frames_sent, handle.frames_received) == (2, 2)
    async with asyncio.timeout(WAIT):
        assert await peripheral.subscriptions.get() == ("echo", False, True)


async def test_idle_link_disconnects_and_the_next_connect_subscribes_again(
    virtual_radio: VirtualRadio,
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    handle = link(virtual_radio, LinkTimeouts(scan_s=5.0, connect_s=10.0, idle_disconnect_s=0.2))
    try:
        async with handle.operation():
            await handle.run(EchoExchange(b"ping"), lambda _e: None)
        assert handle.connected
        async with asyncio.timeout(WAIT):
            await peripheral.subscriptions.get()
            await peripheral.disconnected.wait()
        assert not handle.connected
        # A fresh connection subscribes again, or this echo would never come back.
        async with handle.operation():
            await handle.run(EchoExchange(b"again"), lambda _e: None)
        async with asyncio.timeout(WAIT):
            assert await peripheral.subscriptions.get() == ("echo", False, True)
    finally:
        await handle.close()


async def test_the_operation_lock_serialises_two_callers_on_one_lock(
    virtual_radio: VirtualRadio,
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    first, second = link(virtual_radio), link(virtual_radio)
    order: list[str] = []
    first_inside, release = asyncio.Event(), asyncio.Event()
    second_inside = asyncio.Event()

    async def hold() -> None:
        async with first.operation():
            order.append("first in")
            first_inside.set()
            await release.wait()
            await first.run(EchoExchange(b"first"), lambda _e: None)
            order.append("first out")

    async def follow() -> None:
        await first_inside.wait()
        async with second.operation():
            order.append("second in")
            second_inside.set()
            await second.run(EchoExchange(b"second"), lambda _e: None)
            order.append("second out")

    try:
        async with asyncio.timeout(WAIT * 2):
            holding = asyncio.create_task(hold())
            following = asyncio.create_task(follow())
            await first_inside.wait()
            # The first caller holds the lock, connected: without the lock the second would
            # be inside at once. It must still be outside when the first lets go.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(second_inside.wait()), 0.5)
            release.set()
            await asyncio.gather(holding, following)
    finally:
        await first.close()
        await second.close()
    assert order == ["first in", "first out", "second in", "second out"]
    assert first.frames_received == second.frames_received == 1


async def test_a_step_that_overruns_is_a_typed_timeout_and_the_link_is_closed(
    virtual_radio: VirtualRadio,
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    handle = link(virtual_radio, LinkTimeouts(scan_s=5.0, connect_s=10.0, step_s=0.3))
    exchange = EchoExchange(b"ping", replies=2)
    progress = ExchangeProgress()
    try:
        async with asyncio.timeout(WAIT):
            with pytest.raises(StepTimedOut) as info:
                async with handle.operation():
                    await handle.run(exchange, lambda _e: None, progress=progress)
            # After a failure the link is closed: a late reply must not reach the next one.
            await peripheral.disconnected.wait()
    finally:
        await handle.close()
    assert isinstance(info.value, LockTimeout)
    assert info.value.code == "lock_timeout"
    assert "0.3 s" in info.value.message
    assert exchange.received == [b"ping"]
    assert not progress.committed


async def test_after_the_action_frame_the_reply_wait_is_the_committed_one(
    virtual_radio: VirtualRadio,
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    handle = link(virtual_radio)  # step_s 3 s
    progress = ExchangeProgress()
    try:
        with pytest.raises(StepTimedOut) as info:
            async with handle.operation():
                await handle.run(
                    EchoExchange(b"act", replies=2, action=True),
                    lambda _e: None,
                    progress=progress,
                    committed_reply_s=0.4,
                )
    finally:
        await handle.close()
    assert progress.committed
    assert "0.4 s" in info.value.message


async def test_a_link_dropped_while_a_reply_is_awaited_is_link_lost(
    virtual_radio: VirtualRadio,
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    handle = link(virtual_radio)
    exchange = EchoExchange(replies=1)  # sends nothing, waits for a frame

    async def waiting() -> None:
        async with handle.operation():
            await handle.run(exchange, lambda _e: None)

    try:
        async with asyncio.timeout(WAIT):
            task = asyncio.create_task(waiting())
            await exchange.started.wait()
            await peripheral.disconnect_all()
            with pytest.raises(LinkLost) as info:
                await task
    finally:
        await handle.close()
    assert info.value.code == "lock_connection_failed"
    assert not handle.connected


async def test_an_unreadable_frame_surfaces_where_the_reply_was_awaited(
    virtual_radio: VirtualRadio,
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    handle = link(virtual_radio)
    try:
        with pytest.raises(LockProtocolError):
            async with handle.operation():
                await handle.run(EchoExchange(GARBAGE), lambda _e: None)
        # The link is usable again: a fresh connection, a clean framer.
        async with handle.operation():
            await handle.run(EchoExchange(b"fine"), lambda _e: None)
    finally:
        await handle.close()


async def test_the_last_handle_closed_ends_the_connection(virtual_radio: VirtualRadio) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    first, second = link(virtual_radio), link(virtual_radio)
    for handle in (first, second):
        async with handle.operation():
            await handle.run(EchoExchange(b"hello"), lambda _e: None)
    assert len(peripheral.connections) == 1  # one connection per physical lock
    await first.close()
    assert second.connected
    peripheral.disconnected.clear()
    await second.close()
    async with asyncio.timeout(WAIT):
        await peripheral.disconnected.wait()
    assert not second.connected
