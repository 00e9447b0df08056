"""The reference relay's HTTP service (aiohttp): routes, authentication, the storage thread.

Routes (docs/cloud.md has the protocol):

* gateway, signed ``gateway:<id>``: ``POST /v1/gateways/{id}/entries`` (an upload batch),
  ``GET /v1/gateways/{id}/mailbox?after=N``;
* anyone: ``GET /v1/time?nonce=X`` (the relay's signed time), ``POST /v1/receipts`` (a
  courier's receipt; the gateway's signature inside is what makes it evidence);
* owner, signed ``owner`` with the gateway's registered owner key:
  ``GET /v1/owner/gateways/{id}/entries?since=N&limit=M``, ``.../checkpoints``,
  ``.../alarms``, ``POST .../mailbox``;
* ``GET /v1/openapi.json``: the OpenAPI document. The router and the document are both built
  from the one route table in ``cloud.routes``;
* ``GET /healthz`` (the process answers) and ``GET /readyz`` (and its database does).

Every error, bad input and unknown route included, is RFC 9457 problem+json with a stable
``code`` (a 405 names the allowed methods in ``Allow``); anything unexpected becomes a bare
500 ``internal_error`` and its traceback stays in the log.

The relay holds no state of its own beyond its key: everything, the nonces of signed
requests included, is in its storage (``cloud.storage``: SQLite by default, PostgreSQL for
several relay processes on one database), which makes each upload's checks and writes atomic
per gateway. The unauthenticated receipt route has a request budget per client address and
overall (``cloud.ratelimit``); the budget is per relay process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from nacl.signing import SigningKey

from cloud import routes, tlog_witness, wire, witness
from cloud.dns_publisher import ChallengeTestServer, DnsPublisher, DnsPublishFailed
from cloud.errors import BodyTooLarge, CloudError, RateLimited
from cloud.metrics import IngestMetrics, metrics_app
from cloud.ratelimit import Rate, RequestBudget
from cloud.remote_config import RemoteConfig
from cloud.remote_names import (
    NameNotRouted,
    NameNotYours,
    RemoteNameError,
    challenge_name,
    check_label,
)
from cloud.signed_request import (
    OWNER,
    RequestAuthError,
    RequestVerifier,
    gateway_principal,
)
from cloud.sni_front import SniFront, load_or_create_tunnel_key
from cloud.storage import (
    DATABASE_FILE,
    NonceClaim,
    NonceReplayed,
    OwnerMismatch,
    RelayStorage,
    StorageConfig,
    StorageError,
    UnknownGateway,
    load_config,
    open_storage,
)
from cloud.wire import MalformedMessage, WireReceipt
from gateway.trust.base64url import b64u_decode, b64u_encode
from groundwork.files import write_file
from store import cosignature, note
from store.checkpoint import ORIGIN_PREFIX, parse_body

log = logging.getLogger("threshold.relay")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 2 * 1024 * 1024
#: A session's receipt holds a handful of ~1 KiB entries; this leaves room for 64 of them.
MAX_RECEIPT_BYTES = 256 * 1024
#: What the receipt route may cost: per client address, and everyone together. The global
#: budget is what bounds the work a flood puts on the single storage thread.
RECEIPTS_PER_CLIENT = Rate(per_minute=30, burst=10)
RECEIPTS_OVERALL = Rate(per_minute=600, burst=60)
MAX_READ_ENTRIES = 2000
MAX_MAIL_BYTES = 160 * 1024
READY_TIMEOUT_S = 5.0
RELAY_KEY_FILE = "relay.key"
__all__ = ["DATABASE_FILE", "Relay", "RelayServer"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def load_or_create_relay_key(directory: Path) -> SigningKey:
    """The relay's own Ed25519 key (base64url seed, mode 0600), made on first start."""
    path = directory / RELAY_KEY_FILE
    if path.exists():
        seed = b64u_decode(path.read_text("ascii").strip())
        if len(seed) != 32:
            raise CloudError(f"{path} does not hold a 32-byte seed")
        return SigningKey(seed)
    key = SigningKey.generate()
    write_file(path, (b64u_encode(bytes(key)) + "\n").encode("ascii"))
    return key


def relay_id_of(public_key: bytes) -> str:
    return "relay:" + b64u_encode(public_key)


class ProblemResponse(web.Response):
    """An RFC 9457 problem answer; ``code`` is kept for the metrics."""

    code = ""


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body = {"type": "about:blank", "title": code, "status": status, "code": code, "detail": detail}
    body.update(extra)
    response = ProblemResponse(
        text=json.dumps(body), status=status, content_type=routes.PROBLEM_TYPE, headers=headers
    )
    response.code = code
    return response


class Relay:
    """The relay over one data directory: ``DIR/relay.key``, ``DIR/relay.toml`` (optional,
    the storage settings) and, by default, the SQLite database ``DIR/relay.sqlite3``.

    The storage opens on first use (or :meth:`open`); :meth:`close` closes it.
    """

    def __init__(
        self,
        directory: Path,
        *,
        storage: StorageConfig | None = None,
        metrics: IngestMetrics | None = None,
        clock: Callable[[], int] = now_ms,
        receipts_per_client: Rate = RECEIPTS_PER_CLIENT,
        receipts_overall: Rate = RECEIPTS_OVERALL,
        max_clients: int = 10_000,
        remote: RemoteConfig | None = None,
        dns: DnsPublisher | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.key = load_or_create_relay_key(directory)
        self.public_key = bytes(self.key.verify_key)
        self.relay_id = relay_id_of(self.public_key)
        self.storage_config = storage if storage is not None else load_config(directory)
        self.metrics = metrics if metrics is not None else IngestMetrics()
        self._clock = clock
        self._storage: RelayStorage | None = None
        self._opening = asyncio.Lock()
        # Nonces live in the database (every process sees them), so a request signed before
        # this process started is no replay risk: no start-time cut-off.
        self._verifier = RequestVerifier()
        # A public key whose secret half is thrown away at once: nothing verifies under it.
        self._nobody_key = bytes(SigningKey.generate().verify_key)
        self._receipt_budget = RequestBudget(
            receipts_per_client, receipts_overall, max_clients=max_clients
        )
        self._witness_budget = RequestBudget(
            receipts_per_client, receipts_overall, max_clients=max_clients
        )
        self._openapi = routes.openapi_document()
        # Remote reach (docs/remote.md): the SNI front and the DNS-01 publisher, if offered.
        self.remote = remote
        self.front = (
            None if remote is None else SniFront(remote.names, load_or_create_tunnel_key(directory))
        )
        if dns is None and remote is not None and remote.challenge_dns is not None:
            dns = ChallengeTestServer(remote.challenge_dns)
        self.dns = dns

    async def open(self) -> RelayStorage:
        """The storage, opened (and migrated) on first use."""
        async with self._opening:
            if self._storage is None:
                self._storage = await open_storage(self.storage_config)
            return self._storage

    @property
    def storage(self) -> RelayStorage:
        """The opened storage, for reading what the relay holds (tests, local commands);
        :meth:`open` (or ``RelayServer.start``) opens it. Writes go through the HTTP routes,
        which run each upload's checks and writes in one database transaction."""
        if self._storage is None:
            raise CloudError("the relay's storage is not open")
        return self._storage

    async def close(self) -> None:
        async with self._opening:
            if self._storage is not None:
                await self._storage.close()
                self._storage = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        handlers: dict[str, Handler] = {
            "openapi": self._openapi_json,
            "healthz": self._healthz,
            "readyz": self._readyz,
            "time": self._time,
            "receipt": self._receipt,
            "upload": self._upload,
            "mailbox": self._mailbox,
            "owner_entries": self._owner_entries,
            "owner_checkpoints": self._owner_checkpoints,
            "owner_alarms": self._owner_alarms,
            "owner_post_mail": self._owner_post_mail,
            "tunnel": self._tunnel,
            "acme_challenge_set": self._acme_challenge_set,
            "acme_challenge_clear": self._acme_challenge_clear,
            "witness_info": self._witness_info,
            "witness_add_checkpoint": self._witness_add_checkpoint,
            "witness_checkpoint": self._witness_checkpoint,
        }
        for route in routes.ROUTES:
            app.router.add_route(route.method, route.path, handlers[route.name], name=route.name)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestAuthError as exc:
            return problem(401, exc.code, exc.message)
        except UnknownGateway as exc:
            return problem(404, exc.code, exc.message)
        except (NameNotRouted, RemoteNotOffered) as exc:
            return problem(404, exc.code, exc.message)
        except NameNotYours as exc:
            return problem(403, exc.code, exc.message)
        except RemoteNameError as exc:
            return problem(400, exc.code, exc.message)
        except DnsPublishFailed as exc:
            return problem(502, exc.code, exc.message)
        except OwnerMismatch as exc:
            return problem(403, exc.code, exc.message)
        except MalformedMessage as exc:
            return problem(400, exc.code, exc.message)
        except BodyTooLarge as exc:
            return problem(413, exc.code, exc.message)
        except RateLimited as exc:
            wait = max(1, int(exc.retry_after_s + 0.999))
            return problem(429, exc.code, exc.message, headers={"Retry-After": str(wait)})
        except CloudError as exc:
            log.error("relay error on %s %s: %s", request.method, request.path, exc.code)
            return problem(500, exc.code, exc.message)
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            return problem(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here; allowed: {allowed}",
                headers={"Allow": allowed},
            )
        except web.HTTPNotFound:
            return problem(404, "not_found", "no such route")
        except web.HTTPRequestEntityTooLarge:
            return problem(413, BodyTooLarge.code, f"bodies are limited to {MAX_BODY} bytes")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return problem(exc.status, f"http_{exc.status}", exc.reason)
        except (ConnectionError, web.RequestPayloadError):
            # The client went away mid-request (a cut upload is normal on a phone's or a
            # home's network): nobody is left to answer, and it is not the relay's fault.
            log.info("client went away during %s %s", request.method, request.path)
            return problem(400, "client_went_away", "the request was cut off")
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            return problem(500, "internal_error", "the relay hit an internal error")

    async def _authenticate(
        self, request: web.Request, principal: str, key: bytes
    ) -> tuple[bytes, NonceClaim]:
        """The body of a request whose signature holds, and its nonce, not yet claimed: the
        caller claims it (:meth:`_claim`, or in the upload's own transaction)."""
        body = await request.read()
        if request.headers.get("Threshold-Principal") != principal:
            raise RequestAuthError("this endpoint needs another principal")
        signed = self._verifier.check(
            key, request.method, request.path_qs, body, request.headers, self._clock() / 1000
        )
        # Claimed only after the signature holds, so forged requests cannot fill the nonce
        # table. A nonce is kept for two windows past its signed time: longer than any relay
        # process would accept it, even one whose clock lags another's by up to a window.
        expires_ms = (signed.time + 2 * int(self._verifier.skew_s) + 1) * 1000
        return body, NonceClaim(signed.nonce, expires_ms)

    async def _claim(self, nonce: NonceClaim) -> None:
        storage = await self.open()
        if not await storage.claim_nonce(nonce.nonce, nonce.expires_ms, self._clock()):
            raise RequestAuthError("request replayed (nonce already used)")

    async def _registered_keys(self, gateway_id: str) -> tuple[bytes, bytes]:
        """(gateway key, owner key) of a registered gateway. For an unknown id, keys nobody
        holds: the request then fails exactly as a bad signature does, so an unauthenticated
        caller cannot learn which gateway ids are registered."""
        try:
            record = await (await self.open()).gateway(gateway_id)
        except UnknownGateway:
            return self._nobody_key, self._nobody_key
        return record.public_key, record.owner_key

    async def _signed_by_gateway(self, request: web.Request) -> tuple[str, bytes, NonceClaim]:
        gateway_id = request.match_info["gw"]
        gateway_key, _ = await self._registered_keys(gateway_id)
        body, nonce = await self._authenticate(request, gateway_principal(gateway_id), gateway_key)
        return gateway_id, body, nonce

    async def _as_gateway(self, request: web.Request) -> tuple[str, bytes]:
        gateway_id, body, nonce = await self._signed_by_gateway(request)
        await self._claim(nonce)
        return gateway_id, body

    async def _as_owner(self, request: web.Request) -> tuple[str, bytes]:
        gateway_id = request.match_info["gw"]
        _, owner_key = await self._registered_keys(gateway_id)
        body, nonce = await self._authenticate(request, OWNER, owner_key)
        await self._claim(nonce)
        return gateway_id, body

    # Gateway ---------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await self._errors(request, self._upload_batch)
        finally:
            self.metrics.upload_seconds.observe(time.perf_counter() - started)
        if response.status >= 400:
            code = (
                response.code
                if isinstance(response, ProblemResponse)
                else f"http_{response.status}"
            )
            self.metrics.refusals.labels(code=code).inc()
        return response

    async def _upload_batch(self, request: web.Request) -> web.Response:
        gateway_id, body, nonce = await self._signed_by_gateway(request)
        batch = wire.decode_batch(body)
        if sum(len(e) for e in batch.entries) > wire.MAX_BATCH_BYTES:
            raise MalformedMessage("a batch carries at most 1 MiB of entries")
        storage = await self.open()
        try:
            # The nonce is claimed in the upload's own transaction: one commit per upload.
            outcome = await storage.upload(
                gateway_id,
                batch,
                lambda cp: wire.cosign(self.key, self.relay_id, cp, self._clock() // 1000),
                self._clock(),
                nonce,
            )
        except NonceReplayed:
            raise RequestAuthError("request replayed (nonce already used)") from None
        if isinstance(outcome.result, witness.Refused):
            refused = outcome.result
            if refused.finding.is_alarm:
                self.metrics.alarms.labels(code=refused.finding.value).inc()
            status = 409 if refused.finding is not witness.Finding.MALFORMED else 400
            return problem(
                status, refused.finding.value, refused.detail, acked_size=outcome.held_size
            )
        self.metrics.batches.inc()
        self.metrics.entries.inc(max(0, outcome.held_size - batch.start))
        return web.json_response(
            {
                "acked_size": outcome.held_size,
                "relay_id": self.relay_id,
                "relay_key": base64.b64encode(self.public_key).decode(),
                "cosignature": base64.b64encode(outcome.result).decode(),
                "tree_size": batch.checkpoint.checkpoint.tree_size,
            }
        )

    async def _mailbox(self, request: web.Request) -> web.Response:
        gateway_id, _ = await self._as_gateway(request)
        after = _query_int(request, "after", 0)
        items = await (await self.open()).mail_after(gateway_id, after, 100)
        return web.json_response(
            {"items": [{"id": m.id, "sealed": wire.b64(m.sealed)} for m in items]}
        )

    async def _openapi_json(self, request: web.Request) -> web.Response:
        return web.json_response(self._openapi)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        try:
            storage = await self.open()
            await asyncio.wait_for(storage.ready(), READY_TIMEOUT_S)
        except (StorageError, TimeoutError) as exc:
            detail = exc.message if isinstance(exc, StorageError) else "the database is slow"
            return problem(503, "not_ready", detail)
        return web.json_response({"status": "ready"})

    async def _time(self, request: web.Request) -> web.Response:
        nonce = request.query.get("nonce", "")
        if not 16 <= len(nonce) <= 64 or not nonce.isascii() or not nonce.isalnum():
            raise MalformedMessage("nonce must be 16 to 64 ASCII letters or digits")
        at = self._clock()
        signature = self.key.sign(wire.time_message(self.relay_id, at, nonce)).signature
        return web.json_response(
            {
                "relay_id": self.relay_id,
                "time_ms": at,
                "nonce": nonce,
                "signature": base64.b64encode(signature).decode(),
            }
        )

    # Couriers --------------------------------------------------------------------------------

    async def _receipt(self, request: web.Request) -> web.Response:
        wait = self._receipt_budget.take(request.remote or "unknown", time.monotonic())
        if wait > 0.0:
            raise RateLimited("too many receipts; retry later", wait)
        if (request.content_length or 0) > MAX_RECEIPT_BYTES:
            raise BodyTooLarge(f"a receipt is at most {MAX_RECEIPT_BYTES} bytes")
        body = await request.read()
        if len(body) > MAX_RECEIPT_BYTES:
            raise BodyTooLarge(f"a receipt is at most {MAX_RECEIPT_BYTES} bytes")
        receipt = WireReceipt.from_json(wire.parse_json(body, "receipt"))
        storage = await self.open()
        refused = await storage.witness_receipt(receipt, self._nobody_key, self._clock())
        if refused is not None:
            if refused.finding.is_alarm:
                self.metrics.alarms.labels(code=refused.finding.value).inc()
            status = 409 if refused.finding.is_alarm else 400
            return problem(status, refused.finding.value, refused.detail)
        return web.json_response({"witnessed": receipt.checkpoint.checkpoint.tree_size})

    # The standard witness (C2SP tlog-witness; cloud.tlog_witness) -----------------------------

    async def _witness_info(self, request: web.Request) -> web.Response:
        """The witness's name and vkey, what a log's operator configures it with."""
        return web.json_response(
            {
                "name": self.relay_id,
                "vkey": self.witness_vkey,
                "submission_prefix": routes.WITNESS_PREFIX,
                "monitoring_prefix": routes.WITNESS_PREFIX,
            }
        )

    @property
    def witness_vkey(self) -> str:
        return cosignature.verifier(self.relay_id, self.public_key).vkey()

    async def _witness_add_checkpoint(self, request: web.Request) -> web.Response:
        wait = self._witness_budget.take(request.remote or "unknown", time.monotonic())
        if wait > 0.0:
            raise RateLimited("too many checkpoints; retry later", wait)
        limit = tlog_witness.MAX_REQUEST_BYTES
        if (request.content_length or 0) > limit:
            raise BodyTooLarge(f"an add-checkpoint request is at most {limit} bytes")
        body = await request.read()
        if len(body) > limit:
            raise BodyTooLarge(f"an add-checkpoint request is at most {limit} bytes")
        answer = await self._add_checkpoint(body)
        if answer.status in (200, 409):
            return web.Response(
                status=answer.status,
                body=answer.body.encode(),
                content_type=None,
                headers={"Content-Type": answer.content_type},
            )
        return problem(answer.status, answer.code, answer.body)

    async def _add_checkpoint(self, body: bytes) -> tlog_witness.Answer:
        """The log's key is looked up first; the check of the old size and the write of the
        new latest checkpoint then run in one storage transaction (tlog-witness's atomicity)."""
        now_s = self._clock() // 1000
        try:
            origin = parse_body(note.parse(tlog_witness.parse_request(body).checkpoint).text).origin
        except (tlog_witness.BadRequest, note.MalformedNote):
            answer, _ = tlog_witness.decide(
                body, lambda _: None, lambda _: None, self.key, self.relay_id, now_s
            )
            return answer
        storage = await self.open()
        verifier = await self._log_verifier(storage, origin)
        decided: list[tlog_witness.Answer] = []

        def step(held: tuple[int, bytes] | None) -> tuple[int, bytes, str] | None:
            latest = None if held is None else tlog_witness.Latest(*held)
            answer, _ = tlog_witness.decide(
                body,
                lambda o: verifier if o == origin else None,
                lambda o: latest if o == origin else None,
                self.key,
                self.relay_id,
                now_s,
            )
            decided.append(answer)
            if answer.latest is None:
                return None
            kept = tlog_witness.parse_request(body).checkpoint + answer.body
            return answer.latest.tree_size, answer.latest.root_hash, kept

        await storage.witness_add_checkpoint(origin, step, self._clock())
        return decided[-1]

    @staticmethod
    async def _log_verifier(storage: RelayStorage, origin: str) -> note.Verifier | None:
        """A log added with ``threshold cloud witness-log``, or a registered gateway's log
        (origin ``threshold.example/gw/<id>``, the registered key)."""
        vkey = await storage.witness_log_vkey(origin)
        if vkey is not None:
            return note.parse_vkey(vkey)
        if origin.startswith(ORIGIN_PREFIX):
            try:
                record = await storage.gateway(origin[len(ORIGIN_PREFIX) :])
            except UnknownGateway:
                return None
            return note.ed25519_verifier(origin, record.public_key)
        return None

    async def _witness_checkpoint(self, request: web.Request) -> web.Response:
        wanted = request.match_info["origin_hash"]
        found = await (await self.open()).witness_checkpoint(wanted)
        if found is None:
            return problem(404, "unknown_log", "this witness never cosigned that log")
        return web.Response(
            body=found.encode(),
            content_type=None,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    async def add_witness_log(self, vkey: str) -> str:
        """Trust a log's Ed25519 vkey (its key name is its origin); returns the origin."""
        verifier = note.parse_vkey(vkey)
        await (await self.open()).add_witness_log(verifier.name, vkey.strip(), self._clock())
        return verifier.name

    # Owner -----------------------------------------------------------------------------------

    async def _owner_entries(self, request: web.Request) -> web.Response:
        gateway_id, _ = await self._as_owner(request)
        since = _query_int(request, "since", 0)
        limit = min(_query_int(request, "limit", MAX_READ_ENTRIES), MAX_READ_ENTRIES)
        storage = await self.open()
        entries = await storage.entries(gateway_id, since, limit)
        held = await storage.held_size(gateway_id)
        return web.json_response(
            {
                "held_size": held,
                "entries": [{"index": i, "sealed": wire.b64(sealed)} for i, sealed in entries],
            }
        )

    async def _owner_checkpoints(self, request: web.Request) -> web.Response:
        gateway_id, _ = await self._as_owner(request)
        storage = await self.open()
        records = await storage.witnessed(gateway_id)
        record = await storage.gateway(gateway_id)
        return web.json_response(
            {
                "gateway_key": wire.b64(record.public_key),
                "relay_id": self.relay_id,
                "relay_key": wire.b64(self.public_key),
                "checkpoints": [
                    {
                        **r.checkpoint.to_json(),
                        "source": r.source,
                        "cosignature": None if r.cosignature is None else wire.b64(r.cosignature),
                    }
                    for r in records
                ],
            }
        )

    async def _owner_alarms(self, request: web.Request) -> web.Response:
        gateway_id, _ = await self._as_owner(request)
        alarms = await (await self.open()).alarms(gateway_id)
        return web.json_response(
            {
                "alarms": [
                    {"id": a.id, "time_ms": a.time_ms, "code": a.code, "detail": a.detail}
                    for a in alarms
                ]
            }
        )

    async def _owner_post_mail(self, request: web.Request) -> web.Response:
        gateway_id, body = await self._as_owner(request)
        data = wire.parse_json(body, "mailbox item")
        if not isinstance(data, dict):
            raise MalformedMessage("a mailbox item is an object with the sealed bytes")
        sealed = wire.unb64(data.get("sealed"), "sealed mail")
        if not 0 < len(sealed) <= MAX_MAIL_BYTES:
            raise MalformedMessage(f"sealed mail is 1 to {MAX_MAIL_BYTES} bytes")
        item_id = await (await self.open()).post_mail(gateway_id, sealed, self._clock())
        return web.json_response({"id": item_id}, status=201)

    # Remote reach (docs/remote.md) -----------------------------------------------------------

    def _own_host(self, gateway_id: str, name: object) -> str:
        """The host name of ``name`` if the relay routes it to this (authenticated) gateway."""
        if self.front is None:
            raise RemoteNotOffered("this relay has no SNI front ([remote] in relay.toml)")
        if not isinstance(name, str):
            raise MalformedMessage("name is the gateway's remote name")
        return self.front.names.owned_by(check_label(name), gateway_id)

    def _json_object(self, body: bytes, what: str) -> dict[str, Any]:
        data = wire.parse_json(body, what)
        if not isinstance(data, dict):
            raise MalformedMessage(f"a {what} is a JSON object")
        return data

    async def _tunnel(self, request: web.Request) -> web.Response:
        gateway_id, body = await self._as_gateway(request)
        host = self._own_host(gateway_id, self._json_object(body, "tunnel request").get("name"))
        assert self.front is not None
        assert self.remote is not None
        grant = self.front.issue(host)
        port = self.remote.public_port or self.front.port
        # Only the name is logged: the token and its AES key are secrets.
        log.info("tunnel token issued for %s", host)
        return web.json_response(
            {
                "host_name": grant.host_name,
                "token": grant.token.decode("ascii"),
                "aes_key": grant.aes_key.hex(),
                "aes_iv": grant.aes_iv.hex(),
                "valid_s": grant.valid_s,
                "port": port,
            }
        )

    def _challenge_record(self, gateway_id: str, name: object) -> tuple[str, DnsPublisher]:
        host = self._own_host(gateway_id, name)
        if self.dns is None:
            raise RemoteNotOffered("this relay publishes no DNS-01 challenges")
        assert self.front is not None
        label = host[: -len(self.front.names.domain) - 1]
        return challenge_name(label, self.front.names.domain), self.dns

    async def _acme_challenge_set(self, request: web.Request) -> web.Response:
        gateway_id, body = await self._as_gateway(request)
        data = self._json_object(body, "challenge")
        value = data.get("value")
        # The DNS-01 value is the base64url SHA-256 of the key authorization: 43 characters.
        if not isinstance(value, str) or not _CHALLENGE_VALUE.fullmatch(value):
            raise MalformedMessage("value is the base64url digest of the key authorization")
        record, dns = self._challenge_record(gateway_id, data.get("name"))
        await dns.set_txt(record, value)
        return web.json_response({"record": record})

    async def _acme_challenge_clear(self, request: web.Request) -> web.Response:
        gateway_id, _ = await self._as_gateway(request)
        record, dns = self._challenge_record(gateway_id, request.query.get("name"))
        await dns.clear_txt(record)
        return web.json_response({"record": record})

    async def held(self, gateway_id: str) -> int:
        """How many entries the relay holds for a gateway."""
        return await (await self.open()).held_size(gateway_id)

    # Registration (local, for `threshold cloud register-gateway --dir`) ----------------------

    async def register_gateway(self, gateway_id: str, public_key: bytes, owner_key: bytes) -> None:
        storage = await self.open()
        await storage.register_gateway(gateway_id, public_key, owner_key, self._clock())


_QUERY_INT = re.compile(r"[0-9]{1,16}")
_CHALLENGE_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")


class RemoteNotOffered(CloudError):
    """The relay has no SNI front (or no DNS publisher) configured."""

    code = "remote_not_offered"


def _query_int(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    # ASCII digits only: str.isdigit() also passes superscripts, which int() refuses.
    if not _QUERY_INT.fullmatch(text):
        raise MalformedMessage(f"query parameter {name} must be a non-negative integer")
    return int(text)


class RelayServer:
    """A relay listening on a TCP address until ``stop()`` (tests, the demo, the CLI).

    ``sock`` serves an already listening socket instead (a worker of ``--workers N``: every
    worker accepts on the one socket its supervisor opened). ``metrics_port`` serves this
    relay's ingest metrics on ``127.0.0.1`` (0: a free port, None: not at all)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._runner: web.AppRunner | None = None
        self._metrics_runner: web.AppRunner | None = None
        self.port = 0
        self.metrics_port = 0

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        *,
        sock: socket.socket | None = None,
        metrics_port: int | None = None,
    ) -> str:
        await self.relay.open()
        self._runner = web.AppRunner(self.relay.app(), access_log=None)
        await self._runner.setup()
        site: web.BaseSite
        if sock is not None:
            site = web.SockSite(self._runner, sock, ssl_context=ssl_context)
            host, port = sock.getsockname()[:2]
        else:
            site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        # The runner has this one site, so its first address is the port the OS chose.
        self.port = int(self._runner.addresses[0][1])
        remote = self.relay.remote
        if self.relay.front is not None and remote is not None and sock is None:
            await self.relay.front.start(remote.host, remote.port)
        if metrics_port is not None:
            self._metrics_runner = web.AppRunner(metrics_app(self.relay.metrics), access_log=None)
            await self._metrics_runner.setup()
            metrics_site = web.TCPSite(self._metrics_runner, "127.0.0.1", metrics_port)
            await metrics_site.start()
            self.metrics_port = int(self._metrics_runner.addresses[0][1])
        scheme = "https" if ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        if self.relay.front is not None:
            await self.relay.front.stop()
        for runner in (self._runner, self._metrics_runner):
            if runner is not None:
                await runner.cleanup()
        self._runner = self._metrics_runner = None
        await self.relay.close()
