"""Cloud sync: a supervised background task that delivers the sealed audit log and pulls the
owner's mailbox and the relay's signed time (docs/cloud.md, "In the gateway").

Theory of operation. The store's acknowledged tree size is the cursor: every entry above it
is backlog. A round reads at most ``MAX_BATCH_ENTRIES`` entries (or 1 MiB) of sealed leaves
from the store's read-only connection, sends them with the gateway's latest signed
checkpoint and a consistency proof, and on success records the relay's acknowledged size and
its cosignature in one store transaction. Only one batch is ever in memory, so a backlog of
weeks costs disk, not RAM. Resending a batch is harmless: the relay treats it as a no-op.

The task never touches the access path: it reads on the store's reader connection and writes
one small transaction per batch. When the relay is unreachable it backs off exponentially
with full jitter (capped), honours ``Retry-After``, and meanwhile probes the relay's TCP port
so that it retries at once when the network returns. Rounds also run on a timer (uploads are
batched on purpose: the relay should not learn when each entry was written) and on demand.

The pure decisions (Retry-After, the backoff bounds, the minimum retry interval) live in
``gateway.sync.schedule``; the backoff itself is :func:`groundwork.backoff.doubling_delay`.
A failed round is never retried sooner than ``min_retry_s`` (10 s), and the relay's port is
probed only when it did not answer at all. How far the relay's time may move the floor is
the trust layer's rule, applied by the store's owner (:class:`MailboxHandler`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import functools
import hashlib
import json
import os
import random
import re
import sqlite3
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from nacl.signing import SigningKey

from cloud import wire
from cloud.errors import CloudError
from cloud.signed_request import gateway_principal, sign_request
from gateway.errors import GatewayError
from gateway.sync.pacing import PADDING_KIND, PacingConfig, SlotPlan, UploadPacer
from gateway.sync.schedule import (
    BACKOFF_CAP_S,
    MIN_RETRY_S,
    retry_after_s,
    retry_delay,
)
from gateway.trust.owner_mail import open_mail
from gateway.trust.seal import Unsealer
from groundwork.files import write_file
from store.checkpoint import SignedCheckpoint
from store.db import Store
from store.transaction import StoreTransaction

MAX_BATCH_ENTRIES = wire.MAX_BATCH_ENTRIES
MAX_BATCH_BYTES = wire.MAX_BATCH_BYTES
DEFAULT_INTERVAL_S = 60.0
REQUEST_TIMEOUT_S = 30.0
#: How far ahead of its exchange a paced slot is closed: a tenth of the interval, at most
#: two seconds (closing takes milliseconds; behind a burst of the door's writes, hundreds).
PREPARE_LEAD_FRACTION = 0.1
PREPARE_LEAD_MAX_S = 2.0


class SyncError(GatewayError):
    """One sync round failed; the next one retries."""

    code = "sync_failed"


class SyncRefused(SyncError):
    """The relay refused the upload (an alarm it raised, or a malformed batch)."""

    code = "sync_refused"


class SyncUnavailable(SyncError):
    """The relay is unreachable or overloaded; ``retry_after_s`` is its hint, if any, and
    ``answered`` whether it answered at all (a 503 or 429: it is up, so probing its port
    tells nothing and must not cut the wait short)."""

    code = "sync_unavailable"

    def __init__(
        self, message: str, retry_after_s: float | None = None, *, answered: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.answered = answered


# What the relay answers (pure: tests/fuzz feeds these directly) ---------------------------------


def relay_answer(raw: bytes, status: int) -> Any:
    """The JSON of a relay's answer ({} for none). Whatever way it fails to parse (not UTF-8,
    not JSON, nested past the parser's depth, a number past int()'s digit limit) is the
    relay failing this round: :class:`SyncUnavailable`, never a stray exception."""
    if not raw:
        return {}
    try:
        return wire.parse_json(raw, "relay answer")
    except wire.MalformedMessage:
        raise SyncUnavailable(f"relay answered {status} with a body that is not JSON") from None


#: A relay id as the reference relay writes it ("relay:" and its key); any printable ASCII
#: without spaces from another relay, never a lone surrogate the store cannot encode.
_RELAY_ID = re.compile(r"[\x21-\x7e]{1,128}")


def read_ack(data: dict[str, Any]) -> tuple[int, str, bytes]:
    """(acked size, relay id, cosignature) of an upload's acknowledgement, or
    :class:`SyncRefused`."""
    new_acked = data.get("acked_size")
    relay_id = data.get("relay_id")
    cosignature = data.get("cosignature")
    if (
        isinstance(new_acked, bool)
        or not isinstance(new_acked, int)
        or new_acked < 0
        or not isinstance(relay_id, str)
        or _RELAY_ID.fullmatch(relay_id) is None
        or not isinstance(cosignature, str)
    ):
        raise SyncRefused("the relay's acknowledgement is malformed")
    try:
        signature = base64.b64decode(cosignature, validate=True)
    except ValueError:
        raise SyncRefused("the relay's cosignature is not base64") from None
    # A tlog-cosignature for a note checkpoint (key ID, time, signature: docs/cloud.md), a
    # bare threshold-cosignature/v1 signature for a checkpoint still in the old format.
    if len(signature) not in (4 + 8 + 64, 64):
        raise SyncRefused("the relay's cosignature is not 76 (or 64) bytes")
    return new_acked, relay_id, signature


# Interfaces to the rest of the gateway -----------------------------------------------------------


class MailboxHandler(Protocol):
    """What the service does with what the sync task pulls (it verifies the owner's
    signatures; the relay cannot forge them)."""

    async def apply_revocations(self, token: str) -> None: ...

    async def apply_approval(self, token: str) -> None: ...

    async def raise_time_floor(self, time_ms: int) -> int | None:
        """The relay signed that it is ``time_ms``; the floor afterwards (Unix ms), if known.
        The handler applies the rule (never past the local clock plus the ticket skew)."""


class SyncState(enum.Enum):
    IDLE = "idle"
    SYNCING = "syncing"
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"


@dataclass
class SyncStatus:
    state: SyncState = SyncState.IDLE
    backlog: int = 0
    acked_size: int = 0
    last_success_ms: int | None = None
    last_error: str | None = None
    last_error_ms: int | None = None
    next_attempt_ms: int | None = None
    uploaded_entries: int = 0
    #: The paced upload (docs/privacy.md): entries waiting for a slot, how long the last of
    #: them will wait, and whether the queue is past its bound. None when not paced.
    queued: int | None = None
    queue_delay_s: float | None = None
    queue_over_bound: bool | None = None
    slot_interval_s: float | None = None
    slot_entries: int | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data


@dataclass(frozen=True)
class SyncConfig:
    cloud_url: str
    gateway_id: str
    gateway_key: SigningKey = field(repr=False)
    interval_s: float = DEFAULT_INTERVAL_S
    pin_sha256: bytes | None = None
    ca_file: str | None = None
    relay_key: bytes | None = None
    status_file: Path | None = None
    backoff_cap_s: float = BACKOFF_CAP_S
    probe_interval_s: float = 2.0
    #: No failed round is retried sooner than this (gateway.sync.schedule.MIN_RETRY_S).
    min_retry_s: float = MIN_RETRY_S
    #: Constant-rate upload (gateway.sync.pacing, docs/privacy.md); None: every round
    #: uploads the whole backlog (the relay then sees how many entries each round carries).
    pacing: PacingConfig | None = None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _read_batch(conn: sqlite3.Connection, *, start: int, end: int) -> list[bytes]:
    # Sealed leaves only: the plaintext columns never leave the store on this path.
    leaves: list[bytes] = []
    total = 0
    for index, sealed, leaf in conn.execute(
        "SELECT idx, sealed, leaf_bytes FROM audit_entry WHERE idx >= ? AND idx < ? ORDER BY idx",
        (start, end),
    ):
        if not sealed:
            # Fail closed: an entry written without the owner's seal never leaves the home.
            raise SyncRefused(f"audit entry {index} is not sealed; it will not be uploaded")
        if leaves and total + len(leaf) > MAX_BATCH_BYTES:
            break
        leaves.append(bytes(leaf))
        total += len(leaf)
    return leaves


def _ssl_for(config: SyncConfig) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    if not config.cloud_url.startswith("https://"):
        return False
    if config.pin_sha256 is not None:
        # A pinned certificate is trusted by its fingerprint alone (a self-signed relay).
        return aiohttp.Fingerprint(config.pin_sha256)
    return ssl.create_default_context(cafile=config.ca_file)


class CloudSync:
    """The sync task. ``start()`` launches it; ``stop()`` cancels it; ``sync_now()`` wakes it."""

    def __init__(
        self,
        store: Store,
        config: SyncConfig,
        mailbox: MailboxHandler | None = None,
        *,
        clock: Callable[[], int] = now_ms,
        on_ack: Callable[[int], None] | None = None,
        on_slot: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._on_ack = on_ack
        self._config = config
        self._mailbox = mailbox
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._mail_cursor = 0
        self._unsealer = Unsealer(bytes(config.gateway_key))
        self._relay_held: int | None = None
        self._pacer: UploadPacer | None = None
        self._on_slot = on_slot
        self._quiet_until = 0.0
        self.status = SyncStatus()
        self.round_done = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            loop = self._paced() if self._config.pacing is not None else self._supervise()
            self._task = asyncio.create_task(loop, name="cloud-sync")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.status.state = SyncState.STOPPED
        self._save_status()

    def sync_now(self) -> None:
        """Run a round at once (``threshold sync now``, the network coming back)."""
        self._wake.set()

    async def _supervise(self) -> None:
        failures = 0  # rounds failed in a row
        while True:
            probe = False
            try:
                await self.sync_once()
                failures = 0
                delay = self._config.interval_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Supervision: whatever went wrong, log it in the status and try again later.
                self._record_error(exc)
                hint = exc.retry_after_s if isinstance(exc, SyncUnavailable) else None
                failures += 1
                delay = retry_delay(
                    failures,
                    hint,
                    cap_s=self._config.backoff_cap_s,
                    minimum_s=self._config.min_retry_s,
                    jitter=random.random,
                )
                # Probe the port only when the relay did not answer at all: one that answered
                # (503, 429, with or without Retry-After) is reachable, and a probe would
                # end every wait at once.
                probe = isinstance(exc, SyncUnavailable) and not exc.answered
                self.status.state = SyncState.BACKING_OFF
            self.status.next_attempt_ms = self._clock() + int(delay * 1000)
            self._save_status()
            self.round_done.set()
            await self._sleep(delay, probe=probe)

    # The paced upload (docs/privacy.md) ---------------------------------------------------------

    async def _paced(self) -> None:
        """One exchange per slot, on the clock, whatever happens at home: shortly before the
        slot's time, closing it (padding, a checkpoint of exactly the new boundary); at its
        time, the mailbox poll, the relay's time and the upload up to the boundary. A
        failure changes nothing in the rhythm: the slot is closed locally all the same and
        the next exchange carries it."""
        pacing = self._config.pacing
        assert pacing is not None
        held = await self._store.upload_boundary()
        acked = await self._store.acked_tree_size()
        if held is not None and held[0] < acked:
            # Unpaced rounds ran since the last slot (``paced = false`` for a while): the
            # slots go on from what the relay holds.
            held = (acked, held[1])
        pacer = UploadPacer(pacing, *(held if held is not None else (None, 0)))
        self._pacer = pacer
        pacer.start(time.monotonic())
        while True:
            at = pacer.next_at()
            # The slot is closed (padding, its checkpoint) a little before the exchange's
            # time and the exchange then waits for that time: closing is a write that queues
            # behind the door's, so a busy home would otherwise start its exchanges late,
            # and the relay could learn the lag (docs/privacy.md, "Timing").
            lead = min(PREPARE_LEAD_MAX_S, pacing.interval_s * PREPARE_LEAD_FRACTION)
            woken = await self._wait_until(at - lead)
            now = time.monotonic()
            send_at = now if woken else max(now, at)
            due = pacer.take_due(send_at, random.random())
            try:
                plan = await self._close_slots(
                    pacer, due, self._clock() + int((send_at - now) * 1000)
                )
                await self._wait_until(send_at)
                await self._exchange(pacer, plan)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Supervision: the error goes to the status; the next slot comes on time.
                self._record_error(exc)
                self.status.state = SyncState.BACKING_OFF
                hint = exc.retry_after_s if isinstance(exc, SyncUnavailable) else None
                if hint is not None:
                    self._quiet_until = time.monotonic() + hint
            self.status.next_attempt_ms = self._clock() + int(
                max(0.0, pacer.next_at() - time.monotonic()) * 1000
            )
            self._save_status()
            self.round_done.set()
            if self._on_slot is not None:
                self._on_slot()

    async def _exchange(self, pacer: UploadPacer, plan: SlotPlan) -> SlotPlan:
        """The requests of a closed slot, the same every time: one mailbox poll, one signed
        time, one upload of the slots' entries (more than one only to carry slots an outage
        kept back). The slot was closed first, before any request: then what happens
        between the requests is network and reading, never a write that could wait behind
        the door's, and whatever the mailbox and the time write goes up in the next slot."""
        self.status.state = SyncState.SYNCING
        exchange = time.monotonic() >= self._quiet_until
        failure: BaseException | None = None
        if exchange and self._mailbox is not None:
            try:
                await self.pull_mailbox(self._mailbox, once=True)
                await self.pull_time(self._mailbox)
            except SyncError as exc:
                failure = exc
        if exchange and failure is None:
            checkpoint = await self._store.scheduled_checkpoint()
            assert checkpoint is not None
            await self.upload_backlog(checkpoint)
        self._show_queue(pacer)
        if failure is not None:
            raise failure
        if exchange:
            self.status.state = SyncState.IDLE
            self.status.last_success_ms = self._clock()
            self.status.last_error = None
        return plan

    async def _wait_until(self, moment: float) -> bool:
        """Sleep until ``moment`` (monotonic seconds); True if :meth:`sync_now` cut it short."""
        wait = moment - time.monotonic()
        if wait <= 0:
            return False
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=wait)
        except TimeoutError:
            return False
        return True

    async def _close_slots(self, pacer: UploadPacer, due: int, started_ms: int) -> SlotPlan:
        def close(tx: StoreTransaction) -> SlotPlan:
            plan = pacer.plan(tx.tree_size, due)
            for _ in range(plan.padding):
                tx.append(PADDING_KIND, {})
            tx.checkpoint_at(plan.boundary, started_ms)
            tx.state.set_upload_boundary(plan.boundary, pacer.slots_closed + due, tx.now_ms())
            return plan

        plan = await self._store.transact(close)
        pacer.closed(plan)
        return plan

    def _show_queue(self, pacer: UploadPacer) -> None:
        queue = pacer.queue(self._store.tree_size)
        self.status.queued = queue.queued
        self.status.queue_delay_s = queue.delay_s
        self.status.queue_over_bound = queue.over_bound
        self.status.slot_interval_s = pacer.config.interval_s
        self.status.slot_entries = pacer.config.slots

    async def _sleep(self, delay: float, *, probe: bool) -> None:
        self._wake.clear()
        started = time.monotonic()
        deadline = started + delay
        # A probe that finds the port open ends the wait, but not before the minimum interval:
        # a relay that accepts connections and then fails them must not make a tight loop.
        earliest = started + min(delay, self._config.min_retry_s)
        while (left := deadline - time.monotonic()) > 0:
            step = min(left, self._config.probe_interval_s) if probe else left
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=step)
                return
            if probe and time.monotonic() >= earliest and await self._reachable():
                return

    async def _reachable(self) -> bool:
        parts = urlsplit(self._config.cloud_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, port), timeout=2.0
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def _record_error(self, exc: BaseException) -> None:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        self.status.last_error = str(message)[:300]
        self.status.last_error_ms = self._clock()

    def _save_status(self) -> None:
        path = self._config.status_file
        if path is None:
            return
        with contextlib.suppress(OSError):
            write_file(path, json.dumps(self.status.to_json()).encode(), replace=True)

    # One round ---------------------------------------------------------------------------------

    async def run_round(self) -> None:
        """One round with its outcome kept in the status (``threshold sync now``). On a log
        whose upload is paced it delivers only what the slots have sealed off, with their
        checkpoint: the queue waits for its slots (docs/privacy.md), and a checkpoint larger
        than the slots' would make the next slot's look like a truncation to the relay."""
        try:
            scheduled = await self._store.scheduled_checkpoint()
            if scheduled is not None and self._config.pacing is None:
                if self._mailbox is not None:
                    await self.pull_mailbox(self._mailbox)
                await self.upload_backlog(scheduled)
                self.status.last_success_ms = self._clock()
                self.status.last_error = None
                self._save_status()
                return
            await self.sync_once()
        except SyncError as exc:
            self._record_error(exc)
            self._save_status()
            raise

    async def sync_once(self) -> None:
        self.status.state = SyncState.SYNCING
        # Pulls first: revocations matter most, and what they write goes up in this round.
        if self._mailbox is not None:
            await self.pull_mailbox(self._mailbox)
            await self.pull_time(self._mailbox)
        await self.upload_backlog()
        self.status.state = SyncState.IDLE
        self.status.last_success_ms = self._clock()
        self.status.last_error = None
        self._save_status()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
                connector=aiohttp.TCPConnector(ssl=_ssl_for(self._config), limit=2),
            )
        return self._session

    async def _request(
        self, method: str, path: str, body: bytes = b"", content_type: str | None = None
    ) -> tuple[int, Any]:
        headers = sign_request(
            self._config.gateway_key,
            gateway_principal(self._config.gateway_id),
            method,
            path,
            body,
            self._clock() // 1000,
        )
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = self._config.cloud_url.rstrip("/") + path
        try:
            async with self._http().request(method, url, data=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
                retry = retry_after_s(response.headers.get("Retry-After"), time.time())
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise SyncUnavailable(f"relay unreachable: {type(exc).__name__}: {exc}") from None
        if status >= 500 or status == 429:
            raise SyncUnavailable(f"relay answered {status}", retry, answered=True)
        return status, relay_answer(raw, status)

    async def upload_backlog(self, scheduled: SignedCheckpoint | None = None) -> int:
        """Upload everything above the acknowledged size; return how many entries went up.

        With ``scheduled`` (the paced upload), only up to that checkpoint's size, and with
        that checkpoint: the relay is shown exactly the prefix the slots sealed off."""
        store = self._store
        sent = 0
        acked = await store.acked_tree_size()
        if self._relay_held is not None:
            acked = min(acked, self._relay_held)
        while True:
            size = store.tree_size if scheduled is None else scheduled.checkpoint.tree_size
            self.status.backlog = size - acked
            self.status.acked_size = acked
            if acked >= size:
                return sent
            checkpoint = scheduled
            if checkpoint is None:
                checkpoint = await store.latest_checkpoint()
            if checkpoint is None or checkpoint.checkpoint.tree_size < size:
                checkpoint = await store.checkpoint()
            cp_size = checkpoint.checkpoint.tree_size
            end_limit = min(acked + MAX_BATCH_ENTRIES, cp_size)
            start = acked
            leaves = await store.read(functools.partial(_read_batch, start=start, end=end_limit))
            end = start + len(leaves)
            proof = await store.consistency_proof(end, cp_size)
            batch = wire.UploadBatch(
                self._config.gateway_id, start, tuple(leaves), checkpoint, tuple(proof)
            )
            body = wire.encode_batch(batch)
            del leaves
            status, data = await self._request(
                "POST",
                f"/v1/gateways/{self._config.gateway_id}/entries",
                body,
                wire.BATCH_CONTENT_TYPE,
            )
            if status == 409 and isinstance(data, dict) and data.get("code") == "gap":
                held = data.get("acked_size")
                if not isinstance(held, int) or held >= start:
                    raise SyncRefused("the relay reports a gap it does not explain")
                self._relay_held = held
                acked = held
                continue
            if status != 200 or not isinstance(data, dict):
                code = data.get("code", status) if isinstance(data, dict) else status
                detail = data.get("detail", "") if isinstance(data, dict) else ""
                raise SyncRefused(f"relay refused the upload: {code}: {detail}")
            acked = await self._record_ack(checkpoint, data)
            sent += end - start

    async def _record_ack(self, checkpoint: SignedCheckpoint, data: dict[str, Any]) -> int:
        new_acked, relay_id, cosignature = read_ack(data)
        if new_acked > self._store.tree_size:
            raise SyncRefused(f"the relay acknowledges {new_acked} entries; the log has fewer")
        relay_key = self._config.relay_key
        if relay_key is not None and not wire.verify_cosignature(
            relay_key, relay_id, checkpoint.checkpoint, cosignature
        ):
            raise SyncRefused("the relay's cosignature does not verify with the pinned key")
        stored_acked = await self._store.acked_tree_size()
        cp_size = checkpoint.checkpoint.tree_size

        def record(tx: Any) -> None:
            if new_acked > stored_acked:
                tx.ack_tree_size(new_acked)
            tx.state.add_cosignature(cp_size, relay_id, cosignature, tx.now_ms())

        await self._store.transact(record)
        self._relay_held = new_acked
        if self._on_ack is not None:
            self._on_ack(new_acked)
        self.status.uploaded_entries += max(0, new_acked - stored_acked)
        return new_acked

    async def pull_mailbox(self, handler: MailboxHandler, *, once: bool = False) -> int:
        """Apply the owner's mail; ``once``: one request (the paced rhythm), whatever it held."""
        applied = 0
        while True:
            path = f"/v1/gateways/{self._config.gateway_id}/mailbox?after={self._mail_cursor}"
            status, data = await self._request("GET", path)
            items = data.get("items") if isinstance(data, dict) else None
            if status != 200 or not isinstance(items, list):
                raise SyncRefused(f"the relay's mailbox answered {status}")
            if not items:
                return applied
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("id"), int):
                    raise SyncRefused("a mailbox item is malformed")
                # An item that does not open, or whose token fails the owner's signature, is
                # dropped; one bad item must not wedge the mailbox, so the cursor moves on.
                with contextlib.suppress(GatewayError, CloudError):
                    sealed = wire.unb64(item.get("sealed"), "sealed mail")
                    kind, token = open_mail(self._unsealer, sealed)
                    if kind == "revocations":
                        await handler.apply_revocations(token)
                    else:
                        await handler.apply_approval(token)
                self._mail_cursor = max(self._mail_cursor, int(item["id"]))
                applied += 1
            if once:
                return applied

    async def pull_time(self, handler: MailboxHandler) -> int | None:
        """Ask for the relay's signed time and hand it to ``handler``, which may raise the
        floor by it (never past the local clock plus the ticket skew: the rule and the floor
        live in the store's transaction, not here). The floor afterwards, or None when the
        time was not authenticated."""
        nonce = hashlib.sha256(os.urandom(16)).hexdigest()[:32]
        status, data = await self._request("GET", f"/v1/time?nonce={nonce}")
        if status != 200 or not isinstance(data, dict):
            raise SyncRefused(f"the relay's time answered {status}")
        try:
            signed = wire.SignedTime(
                str(data["relay_id"]),
                int(data["time_ms"]),
                str(data["nonce"]),
                base64.b64decode(str(data["signature"]), validate=True),
            )
        except (KeyError, TypeError, ValueError):
            raise SyncRefused("the relay's signed time is malformed") from None
        relay_key = self._config.relay_key
        if signed.nonce != nonce or relay_key is None or not signed.verify(relay_key):
            return None  # unauthenticated time never moves the floor
        return await handler.raise_time_floor(signed.time_ms)
