"""The access-session invariants (numbered in gateway.access.session's docstring), each
against the real stack: the real store, a virtual lock through bleak/Bumble and its command
log, once per vendor (a ``sim`` door's virtual Nuki, a ``sim-switchbot`` door's virtual
SwitchBot Lock)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

import pytest

from ble.driver import LockState
from gateway.access.ports import SessionRecord
from gateway.access.runner import SessionView
from gateway.access.session import AuditValue
from gateway.clients.lan import ApiProblem
from tests.support.locks import VirtualLockView, view_of
from tests.support.service import WAIT, GatewayHarness, running_harness


@pytest.fixture(params=["sim", "sim-switchbot"])
def lock_spec(request: pytest.FixtureRequest) -> str:
    """The front door's lock: each test runs once per vendor's virtual lock."""
    spec: str = request.param
    return spec


def front_door_lock(spec: str) -> Callable[[Path], None]:
    def configure(config: Path) -> None:
        text = config.read_text()
        assert 'lock = "sim"' in text, "the template's door changed"
        config.write_text(text.replace('lock = "sim"', f'lock = "{spec}"', 1))

    return configure


@pytest.fixture
async def harness(tmp_path: Path, lock_spec: str) -> AsyncIterator[GatewayHarness]:
    async with running_harness(tmp_path / "gw", configure=front_door_lock(lock_spec)) as h:
        yield h


def lock_of(h: GatewayHarness) -> VirtualLockView:
    assert h.gateway.locks is not None
    return view_of(h.gateway.locks.handles["front"])


async def test_write_ahead_granted_is_durable_before_the_unlock_leaves(
    harness: GatewayHarness,
) -> None:
    """Invariant 1: one timeline of durable commits and of commands the lock received."""
    order: list[tuple[str, str]] = []
    service = harness.gateway.service
    assert service is not None
    ledger = service.ledger
    durable_append = ledger.append

    async def recording_append(
        entries: Sequence[tuple[str, Mapping[str, AuditValue]]],
        session: SessionRecord,
        use: tuple[str, str, int] | None = None,
    ) -> bool:
        # Returns once committed (synchronous=FULL).
        written = await durable_append(entries, session, use)
        order.extend(("durable", kind) for kind, _ in entries)
        return written

    ledger.append = recording_append  # type: ignore[method-assign]

    lock_of(harness).on_action(lambda name: order.append(("lock", name)))
    t = harness.ticket()
    await harness.open(t, package_code="PKG-1")
    assert ("lock", "UNLOCK") in order
    assert order.index(("durable", "session.granted")) < order.index(("lock", "UNLOCK"))
    assert order.index(("durable", "session.unlocking")) < order.index(("lock", "UNLOCK"))


async def test_no_blind_unlock_retry_when_the_link_drops(harness: GatewayHarness) -> None:
    """Invariant 2: the link drops during the unlock; the gateway reads, never re-sends."""
    lock_of(harness).faults.drop_link_on_action = 1
    t = harness.ticket()
    outcome: object
    try:
        outcome = (await harness.open(t, package_code="PKG-1")).status
    except ApiProblem as exc:  # the reading decides the answer; the count is the invariant
        outcome = exc.code
    assert outcome in (201, "lock_unavailable")
    assert lock_of(harness).unlocks() == 1
    service = harness.gateway.service
    assert service is not None
    # Whatever the reading said, the session ends with the door locked or open-and-held.
    (view,) = service.sessions()
    assert view.state in ("open", "failed", "relocking", "closed", "alarm")
    assert lock_of(harness).unlocks() == 1


async def test_relock_when_the_door_closes_after_opening(harness: GatewayHarness) -> None:
    t = harness.ticket()
    session_id = (await harness.open(t, package_code="PKG-1")).body["session"]
    service = harness.gateway.service
    assert service is not None

    def seen() -> SessionView:
        view = service.view(session_id)
        assert view is not None
        return view

    # Let the driver consume the unlock's own "new state" flag first, so that the door's
    # change is a fresh flag (a person needs longer than this to reach the handle).
    await lock_of(harness).settled()
    lock_of(harness).open_door()
    # A person takes seconds to walk through; wait until the gateway has seen the door open.
    await service.wait_for(lambda: seen().door_opened, WAIT)
    assert seen().state == "open"
    lock_of(harness).close_door()
    await harness.wait_session(session_id, "closed")
    await lock_of(harness).wait_bolt(LockState.LOCKED)


async def test_relock_when_open_s_runs_out(harness: GatewayHarness) -> None:
    t = harness.ticket(open_s=1)
    session_id = (await harness.open(t, package_code="PKG-1")).body["session"]
    await harness.wait_session(session_id, "closed", 5)
    await lock_of(harness).wait_bolt(LockState.LOCKED)
    events = (await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/events"))["events"]
    causes = [e["body"].get("cause") for e in events if e["kind"] == "session.relocking"]
    assert causes == ["open_timeout"]


async def test_a_door_left_open_past_open_s_is_told_to_the_owner(
    harness: GatewayHarness,
) -> None:
    """The ticket's open time runs out with the door standing open: the relocking entry says
    so, and the owner's feed (the app) gets an alert; the door is relocked all the same."""
    stream = harness.gateway.feed.subscribe("d-test", harness.gateway.feed.last_seq)
    t = harness.ticket(open_s=1)
    session_id = (await harness.open(t, package_code="PKG-1")).body["session"]
    service = harness.gateway.service
    assert service is not None
    await lock_of(harness).settled()
    lock_of(harness).open_door()
    await service.wait_for(lambda: getattr(service.view(session_id), "door_opened", False), WAIT)
    await harness.wait_session(session_id, "relocking", 5)
    kinds = []
    async with asyncio.timeout(WAIT):
        while "door_left_open" not in kinds:
            item = await stream.next(WAIT)
            assert item is not None
            kinds.append(item.notice.kind.value)
    (notice,) = [
        i.notice
        for i in harness.gateway.feed.subscribe("d-2", 0).backlog
        if i.notice.kind.value == "door_left_open"
    ]
    assert (notice.session, notice.door, notice.alert) == (session_id, "front", True)
    events = (await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/events"))["events"]
    (relocking,) = [e["body"] for e in events if e["kind"] == "session.relocking"]
    assert (relocking["cause"], relocking["door_left_open"]) == ("open_timeout", True)
    lock_of(harness).close_door()


async def test_relock_failure_raises_alarm_and_retries_until_locked(
    tmp_path: Path, lock_spec: str
) -> None:
    settings = {
        ("lock", "relock_retry_initial_s"): "0.05",
        ("lock", "relock_retry_max_s"): "0.2",
    }
    configure = front_door_lock(lock_spec)
    async with running_harness(tmp_path / "gw", settings=settings, configure=configure) as h:
        t = h.ticket()
        session_id = (await h.open(t, package_code="PKG-1")).body["session"]
        lock_of(h).faults.jam_motor = True
        done = asyncio.ensure_future(h.done(t, session_id))
        await h.wait_session(session_id, "alarm")
        lock_of(h).faults.jam_motor = False
        await h.wait_session(session_id, "closed")
        await asyncio.wait_for(done, WAIT)
        await lock_of(h).wait_bolt(LockState.LOCKED)
        events = (await h.client.owner(h.keys.owner, "GET", "/v1/owner/events"))["events"]
        kinds = [e["kind"] for e in events if e["body"].get("session") == session_id]
        assert "alarm.raised" in kinds
        assert kinds[-1] == "session.closed"


async def test_shutdown_relocks_open_sessions(tmp_path: Path, lock_spec: str) -> None:
    async with running_harness(tmp_path / "gw", configure=front_door_lock(lock_spec)) as h:
        t = h.ticket(open_s=600)
        await h.open(t, package_code="PKG-1")
        lock = lock_of(h)
        assert lock.bolt is LockState.UNLOCKED
    assert lock.bolt is LockState.LOCKED


async def test_camera_stays_false_without_a_camera(harness: GatewayHarness) -> None:
    service = harness.gateway.service
    assert service is not None
    assert service.camera_live("front") is False


async def test_a_stalled_camera_relocks_early(harness: GatewayHarness) -> None:
    service = harness.gateway.service
    assert service is not None
    t = harness.ticket(open_s=600)
    session_id = (await harness.open(t, package_code="PKG-1")).body["session"]
    assert service.camera_stalled() == 1  # what the camera component reports
    await harness.wait_session(session_id, "closed")
    await lock_of(harness).wait_bolt(LockState.LOCKED)
    events = (await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/events"))["events"]
    causes = [e["body"].get("cause") for e in events if e["kind"] == "session.relocking"]
    assert causes == ["camera_stalled"]


async def test_shutdown_during_an_unlock_relocks_after_it(tmp_path: Path, lock_spec: str) -> None:
    async with running_harness(tmp_path / "gw", configure=front_door_lock(lock_spec)) as h:
        service = h.gateway.service
        assert service is not None
        lock_of(h).faults.reply_delay_s = 0.3  # a slow lock: the unlock is still in flight
        t = h.ticket(open_s=600)
        request = asyncio.ensure_future(h.open(t, package_code="PKG-1"))
        await service.wait_for(
            lambda: any(v.state == "unlocking" for v in service.sessions()),
            WAIT,
        )
        lock = lock_of(h)
        async with asyncio.timeout(WAIT):
            await h.gateway.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(request, WAIT)
    assert lock.bolt is LockState.LOCKED
    assert lock.unlocks() == 1


async def test_owner_lock_relocks_a_session_holding_the_door(harness: GatewayHarness) -> None:
    t = harness.ticket(open_s=600)
    session_id = (await harness.open(t, package_code="PKG-1")).body["session"]
    reply = await harness.client.owner(
        harness.keys.owner, "POST", "/v1/owner/lock", {"door": "front", "action": "lock"}
    )
    assert reply["lock"] == "locked"
    assert (await harness.client.session(session_id))["state"] == "closed"
    events = (await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/events"))["events"]
    causes = [e["body"].get("cause") for e in events if e["kind"] == "session.relocking"]
    assert causes == ["owner"]


async def test_restart_denies_a_session_left_awaiting_approval(tmp_path: Path) -> None:
    from gateway.trust.ticket import Purpose
    from tests.support.service import start_gateway

    async with running_harness(tmp_path / "gw") as h:
        t = h.ticket(purpose=Purpose.SURVEY)
        session_id = (await h.open(t)).body["session"]
    gateway = await start_gateway(tmp_path / "gw" / "threshold.toml")
    try:
        assert gateway.service is not None
        assert gateway.service.reconciled == 1
        events = await gateway.service.events(0, 1000)
    finally:
        await gateway.stop()
    mine = [e for e in events if e["body"].get("session") == session_id]
    assert [e["kind"] for e in mine] == ["session.awaiting_approval", "session.denied"]
    assert mine[-1]["body"]["code"] == "gateway_restarted"


async def test_a_real_nuki_door_needs_its_pairing_then_imports_it(tmp_path: Path) -> None:
    import json as _json

    from ble.nuki.driver import NukiPairing
    from gateway.app.locks import LockSetupError
    from groundwork.files import write_file
    from tests.support.service import Keys, make_gateway_dir, set_config, start_gateway

    config = await make_gateway_dir(tmp_path / "gw", Keys())
    text = config.read_text() + '\n[[door]]\nname = "garage"\nlock = "nuki:AA:BB:CC:DD:EE:01"\n'
    config.write_text(text)
    set_config(config, "lock", "timeout_s", "1")
    with pytest.raises(LockSetupError) as refused:
        await start_gateway(config)
    assert "threshold lock pair --name garage" in refused.value.message
    pairing = NukiPairing(
        address="AA:BB:CC:DD:EE:01",
        auth_id=7,
        shared_key=bytes(32),
        app_id=1,
        lock_uuid=bytes(16),
        name="threshold",
    )
    write_file(
        tmp_path / "gw" / "lock-garage.json",
        _json.dumps({"version": 1, "lock": pairing.to_json()}).encode(),
    )
    gateway = await start_gateway(config)
    try:
        assert gateway.store is not None
        assert gateway.locks is not None
        assert set(gateway.locks.drivers) == {"front", "garage"}
        stored = await gateway.store.lock_pairing("garage")
        assert stored is not None
        assert NukiPairing.from_json(_json.loads(stored.data)) == pairing
    finally:
        async with asyncio.timeout(WAIT):
            await gateway.stop()


async def test_a_real_switchbot_door_needs_its_key_file_private_then_imports_it(
    tmp_path: Path,
) -> None:
    """The owner leaves the key id and encryption key from the SwitchBot account in
    lock-<door>.json: refused while the file is open to others, imported once it is 0600."""
    import json as _json

    from ble.switchbot.driver import SwitchBotCredentials
    from gateway.app.file_modes import SecretFileExposed
    from gateway.app.locks import LockSetupError
    from groundwork.files import write_file
    from tests.support.service import Keys, make_gateway_dir, set_config, start_gateway

    config = await make_gateway_dir(tmp_path / "gw", Keys())
    text = config.read_text() + '\n[[door]]\nname = "gate"\nlock = "switchbot:AA:BB:CC:DD:EE:02"\n'
    config.write_text(text)
    set_config(config, "lock", "timeout_s", "1")
    with pytest.raises(LockSetupError) as refused:
        await start_gateway(config)
    assert "threshold lock switchbot-key --address AA:BB:CC:DD:EE:02" in refused.value.message
    key = SwitchBotCredentials("AA:BB:CC:DD:EE:02", 0x2A, bytes(range(16)))
    key_file = tmp_path / "gw" / "lock-gate.json"
    write_file(key_file, _json.dumps({"version": 1, "lock": key.to_json()}).encode())
    key_file.chmod(0o640)
    with pytest.raises(SecretFileExposed) as exposed:
        await start_gateway(config)
    assert "lock-gate.json" in exposed.value.message
    key_file.chmod(0o600)
    gateway = await start_gateway(config)
    try:
        assert gateway.store is not None
        assert gateway.locks is not None
        assert set(gateway.locks.drivers) == {"front", "gate"}
        stored = await gateway.store.lock_pairing("gate")
        assert stored is not None
        assert SwitchBotCredentials.from_json(_json.loads(stored.data)) == key
    finally:
        async with asyncio.timeout(WAIT):
            await gateway.stop()
