"""Playing the relay operator: run one gateway for a number of upload slots, on a busy day or
a quiet one, and capture everything the relay could see (docs/privacy.md).

The gateway is the real one (``threshold init``, the virtual lock, the paced sync task), the
relay is the reference relay on loopback, and between them sits a recording HTTP/1.1 proxy:
for every request its time, its route (path without query values), the bytes sent and the
bytes answered. After the run the relay's own database is read back too (every row of every
table, as the sizes of its values: what an operator with the disk holds, minus the values
that are times). The busy day is deliveries, a cleaner, a survey the owner approves and an
emergency, through the gateway's LAN API with real tickets. Used by
``tests/integration/test_privacy_observer.py`` and ``bench/privacy.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from cloud.relay import Relay, RelayServer
from cloud.wire import unb64
from gateway.app.config import load
from gateway.app.identity import load_signing_key
from gateway.clients import cloud as cloud_client
from gateway.clients.lan import GatewayClient
from gateway.clients.owner_log import OwnerLog, verify_and_open
from gateway.trust.approval import Approval, Decision, sign_approval
from gateway.trust.base64url import b64u_encode
from gateway.trust.schedule import WeeklyWindow
from gateway.trust.seal import PADDING_KIND, Unsealer
from gateway.trust.ticket import Purpose
from store import audit_log
from store.db import Store
from store.verify import verify_log
from tests.support.service import (
    GATEWAY_ID,
    WAIT,
    GatewayHarness,
    Keys,
    make_gateway_dir,
    secret64,
    set_cloud,
    start_gateway,
)

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Request:
    """One HTTP exchange through the proxy, as the relay's operator sees it on the wire."""

    at_s: float
    route: str
    sent: int
    received: int


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    try:
        body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return head + body


class RecordingProxy:
    """A forwarding HTTP/1.1 proxy on 127.0.0.1 that records every request's shape."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        #: After this many uploads nothing more is forwarded: the relay then holds exactly
        #: that many slots on both days, whatever the gateway was about to send next.
        self.max_uploads: int | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.requests: list[Request] = []
        self.changed = asyncio.Event()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                if self.max_uploads is not None and self.uploads() >= self.max_uploads:
                    return  # the capture is complete: the gateway sees the relay go away
                at = time.monotonic()
                up_writer.write(request)
                await up_writer.drain()
                response = await asyncio.wait_for(_read_message(up_reader), WAIT)
                if response is None:
                    return
                line = request.split(b"\r\n", 1)[0].decode("ascii", "replace")
                method, _, rest = line.partition(" ")
                path = rest.rpartition(" ")[0].split("?", 1)[0]
                self.requests.append(Request(at, f"{method} {path}", len(request), len(response)))
                self.changed.set()
                writer.write(response)
                await writer.drain()
        except (ConnectionError, TimeoutError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            up_writer.close()

    def uploads(self) -> int:
        return sum(1 for r in self.requests if r.route.endswith("/entries"))


@dataclass(frozen=True)
class Exchange:
    """The requests of one slot: a mailbox poll, the signed time, the upload."""

    at_s: float
    routes: tuple[str, ...]
    sent: int
    received: int
    #: From the first request to the last: what the gateway's processing could stretch.
    span_s: float = 0.0


def exchanges(requests: list[Request]) -> list[Exchange]:
    """Requests grouped into slots: each upload ends its slot's exchange."""
    out: list[Exchange] = []
    pending: list[Request] = []
    for request in requests:
        pending.append(request)
        if request.route.endswith("/entries"):
            out.append(
                Exchange(
                    pending[0].at_s,
                    tuple(r.route for r in pending),
                    sum(r.sent for r in pending),
                    sum(r.received for r in pending),
                    pending[-1].at_s - pending[0].at_s,
                )
            )
            pending = []
    return out


def relay_rows(directory: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row the relay's SQLite database holds, each value as its size (bytes: length;
    text: length; integer: its number of decimal digits), table by table."""
    out: dict[str, list[tuple[object, ...]]] = {}
    for path in sorted(directory.glob("*.sqlite3")):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [
                str(row[0])
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
            for table in tables:
                rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
                out[f"{path.name}:{table}"] = sorted(
                    tuple(_size(value) for value in row) for row in rows
                )
        finally:
            conn.close()
    return out


def relay_checkpoints(directory: Path) -> list[tuple[int, int]]:
    """The gateway checkpoints the relay witnessed: (tree size, time in ms), by size."""
    conn = sqlite3.connect(f"file:{directory / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT tree_size, time_ms FROM witnessed WHERE source = 'gateway' ORDER BY tree_size"
        ).fetchall()
        return [(int(size), int(at)) for size, at in rows]
    finally:
        conn.close()


def _size(value: object) -> object:
    if isinstance(value, bytes):
        return ("bytes", len(value))
    if isinstance(value, str):
        return ("text", len(value))
    if isinstance(value, int):
        return ("int", len(str(value)))
    return ("other", repr(value)[:1])


@dataclass
class Day:
    """What the relay saw of one gateway's day, and what happened at home."""

    busy: bool
    requests: list[Request] = field(default_factory=list)
    rows: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)
    #: (start, end) monotonic seconds of each visit at the door.
    visits: list[tuple[float, float]] = field(default_factory=list)
    #: Seconds each real entry waited from its append to the slot that sealed it off.
    queue_delays_s: list[float] = field(default_factory=list)
    visit_kinds: list[str] = field(default_factory=list)
    shown_kinds: list[str] = field(default_factory=list)
    log_problems: list[str] = field(default_factory=list)
    verify_ok: bool = False
    padding: int = 0
    #: (tree size, time in ms) of every checkpoint the relay witnessed from the gateway.
    checkpoints: list[tuple[int, int]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def paced_gateway(
    directory: Path, *, interval_s: float, slots: int, jitter_s: float
) -> AsyncIterator[tuple[GatewayHarness, RecordingProxy, Relay]]:
    """A gateway with paced uploads to a relay through a recording proxy."""
    keys = Keys()
    relay = Relay(directory / "cloud")
    server = RelayServer(relay)
    relay_url = await server.start()
    assert server.port
    proxy = RecordingProxy(server.port)
    proxy_url = await proxy.start()
    client: GatewayClient | None = None
    harness: GatewayHarness | None = None
    try:
        config = await make_gateway_dir(directory / "gw", keys)
        set_cloud(
            config,
            proxy_url,
            interval_s=repr(interval_s),
            slots=str(slots),
            jitter=repr(jitter_s / interval_s),
        )
        text = config.read_text()
        text = text.replace(
            '# relay_public_key = "<the relay\'s Ed25519 key, base64url>"',
            f'relay_public_key = "{b64u_encode(relay.public_key)}"',
        )
        config.write_text(text)
        gateway_public = bytes(load_signing_key(load(config).key_file).verify_key)
        await relay.register_gateway(GATEWAY_ID, gateway_public, bytes(keys.owner.verify_key))
        gateway = await start_gateway(config)
        client = GatewayClient(gateway.url, fingerprint=gateway.fingerprint, timeout_s=WAIT)
        harness = GatewayHarness(directory / "gw", keys, gateway, client)
        yield harness, proxy, relay
    finally:
        if client is not None:
            await client.close()
        if harness is not None:
            async with asyncio.timeout(WAIT):
                await harness.gateway.stop()
        await proxy.stop()
        await server.stop()
        del relay_url


async def wait_uploads(proxy: RecordingProxy, count: int, limit_s: float) -> None:
    async with asyncio.timeout(limit_s):
        while proxy.uploads() < count:
            proxy.changed.clear()
            await proxy.changed.wait()


async def busy_day(h: GatewayHarness) -> list[tuple[float, float]]:
    """Two deliveries, a cleaner, a survey the owner approves, an emergency."""
    visits: list[tuple[float, float]] = []
    now = datetime.now(UTC)
    minute = now.hour * 60 + now.minute
    window = WeeklyWindow(frozenset({now.weekday()}), max(0, minute - 30), min(1440, minute + 30))
    for ticket, code in (
        (h.ticket(subject="courier one"), "PKG-1"),
        (h.ticket(subject="courier two", package_codes=("PKG-2",)), "PKG-2"),
        (h.ticket(purpose=Purpose.SERVICE, schedule=(window,), subject="cleaner", uses=5), None),
        (h.ticket(purpose=Purpose.EMERGENCY, subject="paramedic"), None),
    ):
        started = time.monotonic()
        reply = await (h.open(ticket) if code is None else h.open(ticket, package_code=code))
        session = reply.body["session"]
        await h.wait_session(session, "open")
        await h.done(ticket, session)
        await h.wait_session(session, "closed")
        visits.append((started, time.monotonic()))
    started = time.monotonic()
    survey = h.ticket(purpose=Purpose.SURVEY, subject="surveyor")
    waiting = (await h.open(survey)).body
    session = waiting["session"]
    stamp = datetime.now(UTC)
    approval = sign_approval(
        Approval(
            GATEWAY_ID, session, survey.jti, Decision.APPROVE, stamp, stamp + timedelta(minutes=5)
        ),
        secret64(h.keys.owner),
    )
    await h.client.owner(h.keys.owner, "POST", "/v1/owner/approvals", {"approval": approval})
    await h.wait_session(session, "open")
    await h.done(survey, session)
    await h.wait_session(session, "closed")
    visits.append((started, time.monotonic()))
    return visits


async def observe_day(
    directory: Path,
    *,
    busy: bool,
    intervals: int,
    interval_s: float,
    slots: int,
    jitter_s: float,
) -> Day:
    """Run one gateway for ``intervals`` upload slots (a busy day or a quiet one) and keep
    what the relay saw, what the owner reads back, and how long real entries queued."""
    day = Day(busy)
    async with paced_gateway(directory, interval_s=interval_s, slots=slots, jitter_s=jitter_s) as (
        h,
        proxy,
        relay,
    ):
        gateway = h.gateway
        assert gateway.sync is not None
        assert gateway.store is not None
        proxy.max_uploads = intervals
        await wait_uploads(proxy, 1, WAIT)
        first_visit_index = gateway.store.tree_size
        if busy:
            day.visits = await busy_day(h)
        await wait_uploads(proxy, intervals, intervals * interval_s + 4 * WAIT)
        # Nothing more goes up: the capture is exactly ``intervals`` slots on both days.
        await gateway.sync.stop()
        day.requests = list(proxy.requests)
        day.rows = relay_rows(directory / "cloud")
        day.checkpoints = relay_checkpoints(directory / "cloud")
        store = gateway.store
        day.queue_delays_s = await _queue_delays(store, first_visit_index, slots)
        view = await _owner_view(relay, h)
        day.log_problems = view.problems
        day.padding = view.padding
        day.shown_kinds = [e.kind for e in view.entries if e.index >= first_visit_index]
        local = await h.client.owner(
            h.keys.owner, "GET", f"/v1/owner/events?since={first_visit_index}&limit=1000"
        )
        day.visit_kinds = [e["kind"] for e in local["events"] if e["index"] >= first_visit_index]
        day.verify_ok = await store.read(_verify)
    return day


async def _owner_view(relay: Relay, h: GatewayHarness) -> OwnerLog:
    """``threshold owner log``: download from the relay, verify, open with the owner's key."""
    server = RelayServer(relay)
    url = await server.start()
    try:
        async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
            entries, document, _ = await cloud_client.download_log(
                session, url, h.keys.owner, GATEWAY_ID
            )
    finally:
        await server.stop()
    return verify_and_open(
        entries,
        cloud_client.witnessed_from(document),
        unb64(document.get("gateway_key"), "gateway key"),
        Unsealer(bytes(h.keys.owner)),
        str(document.get("relay_id")),
        unb64(document.get("relay_key"), "relay key"),
    )


def _verify(conn: sqlite3.Connection) -> bool:
    identity = audit_log.gateway_identity(conn)
    assert identity is not None
    return verify_log(conn, identity[1]).ok


async def _queue_delays(store: Store, since: int, slots: int) -> list[float]:
    """For every real entry from ``since`` on that a slot has sealed off: seconds from its
    append to the slot's checkpoint (the scheduled checkpoints are the boundaries)."""
    held = await store.upload_boundary()
    assert held is not None
    boundary = held[0]

    def read(conn: sqlite3.Connection) -> list[float]:
        checkpoints = [
            cp.checkpoint
            for cp in audit_log.all_checkpoints(conn)
            if since < cp.checkpoint.tree_size <= boundary
            and (boundary - cp.checkpoint.tree_size) % slots == 0
        ]
        delays: list[float] = []
        for entry in audit_log.iter_entries(conn, since):
            if entry.entry.index >= boundary:
                break
            if entry.entry.kind == PADDING_KIND:
                continue
            # The scheduled checkpoint of the slot that took it (the boundaries are ``slots``
            # apart; receipts' and the every-N checkpoints stay local and do not count).
            covering = [c for c in checkpoints if c.tree_size > entry.entry.index]
            sealed_at = min(c.time_ms for c in covering)
            delays.append(max(0.0, (sealed_at - entry.entry.time_ms) / 1000))
        return delays

    return await store.read(read)


# One day per process: the two days of a comparison must not share an interpreter, or the
# busy one's work would delay the quiet one's exchanges (and the other way round).


def day_to_json(day: Day) -> dict[str, object]:
    data = dataclasses.asdict(day)
    data["rows"] = {
        table: [list(map(list, row)) for row in rows] for table, rows in day.rows.items()
    }
    return data


def day_from_json(data: dict[str, Any]) -> Day:
    day = Day(bool(data["busy"]))
    day.requests = [Request(**r) for r in data["requests"]]
    day.rows = {
        table: [tuple(tuple(v) for v in row) for row in rows]
        for table, rows in data["rows"].items()
    }
    day.visits = [(float(a), float(b)) for a, b in data["visits"]]
    day.queue_delays_s = [float(x) for x in data["queue_delays_s"]]
    day.visit_kinds = list(data["visit_kinds"])
    day.shown_kinds = list(data["shown_kinds"])
    day.log_problems = list(data["log_problems"])
    day.verify_ok = bool(data["verify_ok"])
    day.padding = int(data["padding"])
    day.checkpoints = [(int(a), int(b)) for a, b in data["checkpoints"]]
    return day


async def observe_day_in_process(
    directory: Path,
    *,
    busy: bool,
    intervals: int,
    interval_s: float,
    slots: int,
    jitter_s: float,
) -> Day:
    """:func:`observe_day` in a Python process of its own."""
    args = [
        sys.executable,
        "-m",
        "tests.support.observer",
        str(directory),
        "busy" if busy else "quiet",
        str(intervals),
        repr(interval_s),
        str(slots),
        repr(jitter_s),
    ]
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    limit = intervals * interval_s + 8 * WAIT
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise AssertionError(f"the {args[4]} day failed:\n{err.decode(errors='replace')[-3000:]}")
    return day_from_json(json.loads(out.decode().strip().splitlines()[-1]))


def main() -> None:
    directory, kind, intervals, interval_s, slots, jitter_s = sys.argv[1:7]
    day = asyncio.run(
        observe_day(
            Path(directory),
            busy=kind == "busy",
            intervals=int(intervals),
            interval_s=float(interval_s),
            slots=int(slots),
            jitter_s=float(jitter_s),
        )
    )
    print(json.dumps(day_to_json(day)))


if __name__ == "__main__":
    main()
