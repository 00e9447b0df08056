"""``threshold demo``: the whole gateway on embedded defaults, told as a short timeline.

No internet, no hardware. It creates a gateway directory (``threshold init``: key,
threshold.toml, TLS certificate, database) in ``--dir`` or a temporary directory, generates a
short test video there (:mod:`video.testvideo`) and uses it as the camera (the file source,
played in a loop: every entry is filmed and gets a ``clip.recorded`` entry; ``--no-camera``
runs without one), starts the real service on 127.0.0.1 with the virtual Nuki lock in
process (driven through bleak over Bumble by the real Nuki driver), and plays every party
over the real HTTPS API:

1. an offline delivery with a package code, in and out again;
2. the same ticket replayed, refused;
3. a ticket for another gateway, refused;
4. a cleaner inside their weekly window (let in) and outside it (refused);
5. a surveyor the owner approves live;
6. the cloud phase: the relay runs on loopback but its link is cut during all of the above;
   then the internet comes back, the gateway catches up, and the owner's reader prints the
   decrypted, verified history (``--dir DIR`` keeps the relay's data in ``DIR/cloud/``).

It then lists the clips (each file's SHA-256 checked against its audit entry) and ends with
``audit verify`` over the database the run wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import secrets
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from gateway.app.config import CloudConfig, DoorConfig, load
from gateway.app.identity import load_signing_key
from gateway.app.provision import CONFIG_NAME, init_gateway
from gateway.app.wiring import Gateway, Overrides
from gateway.clients.lan import ApiProblem, GatewayClient
from gateway.demo.cloud import DemoCloud
from gateway.trust.approval import Approval, Decision, sign_approval
from gateway.trust.base64url import b64u_encode
from gateway.trust.schedule import WeeklyWindow
from gateway.trust.ticket import Camera, Delivery, Purpose, Ticket, package_hash, sign_ticket
from groundwork.files import write_file
from video.testvideo import generate_test_video

GATEWAY_ID = "gw-demo"
DOOR = "front"
DEMO_VIDEO = "demo-camera.mp4"
DEMO_POST_ROLL_S = 1.0  # short, so the demo stays well under a minute


@dataclass
class Timeline:
    started: float = field(default_factory=time.perf_counter)
    ok: bool = True

    def say(self, text: str) -> None:
        print(f"{(time.perf_counter() - self.started):6.2f}s  {text}", flush=True)

    def expect(self, what: str, good: bool) -> None:
        self.say(("  ok    " if good else "  FAIL  ") + what)
        self.ok = self.ok and good


@dataclass
class Party:
    """A holder with a ticket: a phone."""

    name: str
    token: str
    jti: str
    key: SigningKey


def _issue(
    owner: SigningKey,
    name: str,
    purpose: Purpose,
    *,
    aud: str = GATEWAY_ID,
    codes: tuple[str, ...] = (),
    schedule: tuple[WeeklyWindow, ...] = (),
    approval: str | None = None,
) -> Party:
    holder = SigningKey.generate()
    now = datetime.now(UTC)
    jti = f"{purpose.value}-{secrets.token_hex(4)}"
    ticket = Ticket(
        iss="owner",
        sub=name,
        aud=aud,
        jti=jti,
        iat=now - timedelta(minutes=1),
        nbf=now - timedelta(minutes=1),
        exp=now + timedelta(hours=4),
        door=DOOR,
        purpose=purpose,
        cnf=bytes(holder.verify_key),
        uses=1,
        schedule=schedule,
        delivery=Delivery("order-4711", tuple(package_hash(c) for c in codes))
        if purpose is Purpose.DELIVERY
        else None,
        approval=approval,
        open_s=60,
        camera=Camera.REQUIRED,
    )
    token = sign_ticket(ticket, bytes(owner) + bytes(owner.verify_key))
    return Party(name, token, jti, holder)


async def _visit(
    client: GatewayClient, tl: Timeline, p: Party, *, package_code: str | None = None
) -> dict[str, Any] | ApiProblem:
    try:
        reply = await client.open(
            gateway_id=GATEWAY_ID,
            ticket=p.token,
            jti=p.jti,
            holder=p.key,
            door=DOOR,
            package_code=package_code,
        )
    except ApiProblem as problem:
        tl.say(f"  {p.name}: refused, {problem.status} {problem.code}")
        return problem
    tl.say(f"  {p.name}: {reply.status} session {reply.body['session']} {reply.body['state']}")
    return reply.body


async def _done(client: GatewayClient, tl: Timeline, p: Party, session: str) -> str:
    view = await client.done(gateway_id=GATEWAY_ID, session_id=session, jti=p.jti, holder=p.key)
    tl.say(f"  {p.name}: done, door {view['state']}")
    return str(view["state"])


def _windows_around_now() -> tuple[WeeklyWindow, WeeklyWindow]:
    now = datetime.now(UTC)
    minute = now.hour * 60 + now.minute
    day = frozenset({now.weekday()})
    inside = WeeklyWindow(day, max(0, minute - 60), min(1440, minute + 60))
    later = (minute + 180) % 1440
    other = frozenset({(now.weekday() + 3) % 7})
    outside = WeeklyWindow(other, later, min(1440, later + 60))
    return inside, outside


async def _prepare(directory: Path, tl: Timeline, camera: bool) -> tuple[SigningKey, Path]:
    """A new gateway directory, or the one a previous ``--dir`` run kept (reused as is)."""
    owner_file = directory / "owner.key"
    config_path = directory / CONFIG_NAME
    if config_path.exists() and owner_file.exists():
        tl.say(f"reusing the gateway in {directory} (its log keeps growing)")
        return load_signing_key(owner_file), config_path
    owner = SigningKey.generate()
    tl.say(f"threshold init --dir {directory} (gateway {GATEWAY_ID}, door {DOOR}=sim)")
    result = await asyncio.to_thread(
        init_gateway,
        directory,
        owner_pub=b64u_encode(bytes(owner.verify_key)),
        gateway_id=GATEWAY_ID,
        doors=(DoorConfig(DOOR, "sim"),),
        bind="127.0.0.1:0",
        allow_without_camera=not camera,
    )
    # The owner's key normally lives on the owner's phone; the demo plays the owner.
    write_file(owner_file, (b64u_encode(bytes(owner) + bytes(owner.verify_key)) + "\n").encode())
    tl.say(f"  gateway key {result.public_key[:16]}..., TLS key {result.tls_fingerprint[:16]}...")
    return owner, result.config_path


async def _scenario(directory: Path, tl: Timeline, camera: bool, serve: bool = False) -> int:
    owner, config_path = await _prepare(directory, tl, camera)
    config = load(config_path)
    overrides = Overrides(port=0, mdns=False)
    if camera:
        video = directory / DEMO_VIDEO
        if not video.exists():
            await asyncio.to_thread(generate_test_video, video, seconds=4.0)
        tl.say(f"camera: {video.name} (generated test video, played in a loop as the camera)")
        overrides = dataclasses.replace(overrides, camera_url=str(video))
        config = dataclasses.replace(
            config,
            cameras=(
                dataclasses.replace(config.camera, post_roll_s=DEMO_POST_ROLL_S, preroll_s=2.0),
            ),
        )
        tl.say(
            "  policy.allow_without_camera = "
            + str(config.policy.allow_without_camera).lower()
            + ": camera = required tickets need it live"
        )
    else:
        tl.say("  no camera: policy.allow_without_camera = true (stated in threshold.toml)")
    cloud = DemoCloud(directory / "cloud")
    url = await cloud.start(
        GATEWAY_ID, bytes(load_signing_key(config.key_file).verify_key), bytes(owner.verify_key)
    )
    tl.say(f"cloud relay on loopback ({directory / 'cloud'}), its link cut: no internet")
    held_at_start = await cloud.held_size(GATEWAY_ID)
    config = dataclasses.replace(
        config,
        # Unpaced: the demo shows a catch-up of everything at once (docs/privacy.md has the
        # paced upload, which the observer test runs).
        cloud=CloudConfig(url=url, interval_s=2.0, relay_public_key=cloud.public_key, paced=False),
    )
    gateway = Gateway(config, overrides)
    try:
        await gateway.start()
        tl.say(f"gateway running at {gateway.url}; virtual Nuki lock via bleak over Bumble")
        try:
            async with GatewayClient(gateway.url, fingerprint=gateway.fingerprint) as client:
                await _flows(client, gateway, owner, tl)
                if gateway.camera is not None:
                    await gateway.camera.settle(15.0)
                    await _clips(client, owner, tl)
            await _cloud_phase(gateway, cloud, owner, tl, held_at_start)
            if serve:
                await _serve(gateway, owner, tl)
        finally:
            await gateway.stop()
    finally:
        await cloud.stop()
    tl.say("gateway stopped (doors relocked, store closed)")
    return _audit_verify(config_path, tl)


async def _clips(client: GatewayClient, owner: SigningKey, tl: Timeline) -> None:
    events = (await client.owner(owner, "GET", "/v1/owner/events?limit=1000"))["events"]
    opened = {e["body"]["session"] for e in events if e["kind"] == "session.open"}
    clips = [e["body"] for e in events if e["kind"] == "clip.recorded"]
    snaps = [e for e in events if e["kind"] == "snapshot.saved"]
    tl.say(f"camera: {len(clips)} clips recorded, {len(snaps)} snapshots")
    good = 0
    for clip in clips:
        path = Path(clip["path"])
        digest = await asyncio.to_thread(_sha256_of, path)
        ok = digest == clip["sha256"]
        good += ok
        seconds = clip["duration_ms"] / 1000
        tl.say(
            f"  clip {path.name}: {clip['frame_count']} frames, {seconds:.1f} s, "
            f"sha256 {clip['sha256'][:12]}... {'matches the file' if ok else 'MISMATCH'}"
        )
    missing = [e["body"] for e in events if e["kind"] == "clip.missing"]
    for body in missing:
        tl.say(f"  clip missing for {body['session']}: {body['code']}")
    filmed = {c["session_id"] for c in clips}
    tl.expect(
        f"every entry filmed ({len(opened & filmed)}/{len(opened)}), hashes match",
        bool(opened) and opened <= filmed and good == len(clips),
    )


def _sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


async def _cloud_phase(
    gateway: Gateway, cloud: DemoCloud, owner: SigningKey, tl: Timeline, held_at_start: int
) -> None:
    assert gateway.sync is not None
    assert gateway.store is not None
    store, sync = gateway.store, gateway.sync
    tl.say("6. the internet comes back")
    tl.expect(
        f"nothing reached the cloud while offline ({store.tree_size - held_at_start} entries"
        " waiting)",
        await cloud.held_size(GATEWAY_ID) == held_at_start,
    )
    cloud.unblock()
    deadline = time.monotonic() + 30
    while await store.acked_tree_size() < store.tree_size and time.monotonic() < deadline:
        sync.round_done.clear()
        sync.sync_now()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sync.round_done.wait(), 10)
    acked = await store.acked_tree_size()
    tl.expect(
        f"gateway caught up: the relay acknowledged {acked} sealed entries",
        acked == store.tree_size and await cloud.held_size(GATEWAY_ID) == acked,
    )
    log, alarms = await cloud.owner_log(owner, GATEWAY_ID)
    tl.say("threshold owner log: downloaded, verified against the signed checkpoints, unsealed")
    for alarm in alarms:
        tl.say(f"  {alarm}")
    for entry in log.entries:
        who = entry.body.get("sub") or entry.body.get("gateway") or ""
        tl.say(f"  {entry.index:>3} {entry.kind:<24} {who}")
    tl.expect(
        f"owner's history: {len(log.entries)} entries, verified up to {log.verified_size}",
        not alarms and not log.problems and len(log.entries) == acked,
    )


async def _flows(client: GatewayClient, gateway: Gateway, owner: SigningKey, tl: Timeline) -> None:
    tl.say("1. offline delivery with a package code")
    courier = _issue(owner, "courier", Purpose.DELIVERY, codes=("PKG-4711-A",))
    visit = await _visit(client, tl, courier, package_code="PKG-4711-A")
    tl.expect("the door opened", isinstance(visit, dict) and visit["state"] == "open")
    if isinstance(visit, dict):
        tl.expect(
            "relocked after done", await _done(client, tl, courier, visit["session"]) == "closed"
        )

    tl.say("2. the same ticket replayed")
    again = await _visit(client, tl, courier, package_code="PKG-4711-A")
    tl.expect("replay refused", isinstance(again, ApiProblem) and again.code == "uses_exhausted")

    tl.say("3. a ticket for another gateway")
    stranger = _issue(owner, "courier-2", Purpose.DELIVERY, aud="gw-next-door", codes=("X",))
    other = await _visit(client, tl, stranger, package_code="X")
    tl.expect("refused", isinstance(other, ApiProblem) and other.code == "wrong_gateway")

    tl.say("4. a cleaner inside and outside their weekly window")
    inside, outside = _windows_around_now()
    cleaner = _issue(owner, "cleaner", Purpose.SERVICE, schedule=(inside,))
    visit = await _visit(client, tl, cleaner)
    tl.expect("let in inside the window", isinstance(visit, dict) and visit["state"] == "open")
    if isinstance(visit, dict):
        await _done(client, tl, cleaner, visit["session"])
    late = _issue(owner, "cleaner", Purpose.SERVICE, schedule=(outside,))
    refused = await _visit(client, tl, late)
    tl.expect(
        "refused outside it", isinstance(refused, ApiProblem) and refused.code == "outside_schedule"
    )

    tl.say("5. a surveyor the owner approves live")
    surveyor = _issue(owner, "surveyor", Purpose.SURVEY)
    visit = await _visit(client, tl, surveyor)
    tl.expect(
        "waits for the owner", isinstance(visit, dict) and visit["state"] == "awaiting_approval"
    )
    if isinstance(visit, dict):
        now = datetime.now(UTC)
        approval = sign_approval(
            Approval(
                GATEWAY_ID,
                visit["session"],
                surveyor.jti,
                Decision.APPROVE,
                now,
                now + timedelta(minutes=5),
            ),
            bytes(owner) + bytes(owner.verify_key),
        )
        view = await client.owner(owner, "POST", "/v1/owner/approvals", {"approval": approval})
        tl.say(f"  owner: signed approval sent; session {view['state']}")
        tl.expect("door opened on approval", view["state"] == "open")
        await _done(client, tl, surveyor, visit["session"])

    events = (await client.owner(owner, "GET", "/v1/owner/events?limit=1000"))["events"]
    tl.say(
        f"audit log: {len(events)} entries, e.g. "
        + ", ".join(e["kind"] for e in events if e["body"].get("sub") == "courier")
    )


def _audit_verify(config_path: Path, tl: Timeline) -> int:
    from store.verify import open_read_only, verify_log

    config = load(config_path)
    conn = open_read_only(str(config.database))
    try:
        report = verify_log(conn)
    finally:
        conn.close()
    tl.say(f"threshold audit verify --db {config.database}")
    tl.expect(
        f"{report.entries} entries, {report.checkpoints} checkpoints, chain and signatures hold",
        report.ok,
    )
    return 0 if tl.ok else 1


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)


async def _serve(gateway: Gateway, owner: SigningKey, tl: Timeline) -> None:
    """``--serve``: keep the gateway up for the owner app, with a surveyor waiting, until a
    signal (Ctrl-C) comes."""
    from gateway.app.tls import chromium_spki_pin

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with GatewayClient(gateway.url, fingerprint=gateway.fingerprint) as client:
        made = await client.owner(
            owner, "POST", "/v1/owner/enrollments", {"name": "Demo owner"}, expect=(201,)
        )
        tl.say(f"the owner app: {gateway.app_url}")
        tl.say("  a one-time enrollment link (10 minutes): open it to add your browser")
        print(f"\n    {made['link']}\n", flush=True)
        pin = chromium_spki_pin(gateway.config.api.tls_cert)
        tl.say("  passkeys need a certificate the browser trusts; for this demo's self-signed one:")
        print(
            f"    chromium --ignore-certificate-errors-spki-list={pin} --user-data-dir="
            f"$(mktemp -d) '{made['link']}'\n",
            flush=True,
        )
        surveyor = _issue(owner, "Sam Surveyor", Purpose.SURVEY)
        visit = await _visit(client, tl, surveyor)
        if isinstance(visit, dict):
            tl.say("  a surveyor waits at the front door: approve them in the app (5 minutes)")
        tl.say("serving; Ctrl-C stops the gateway")
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


def run_demo(directory: Path | None, *, camera: bool = True, serve: bool = False) -> int:
    tl = Timeline()
    with _quiet_logs():
        if directory is not None:
            code = asyncio.run(_scenario(directory, tl, camera, serve))
            tl.say(f"kept {directory} for inspection")
        else:
            with tempfile.TemporaryDirectory(prefix="threshold-demo-") as tmp:
                code = asyncio.run(_scenario(Path(tmp) / "gateway", tl, camera, serve))
    tl.say("demo " + ("passed" if code == 0 else "FAILED"))
    return code
