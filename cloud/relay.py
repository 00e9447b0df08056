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
  from the one route table in ``cloud.routes``.

Every error, bad input and unknown route included, is RFC 9457 problem+json with a stable
``code`` (a 405 names the allowed methods in ``Allow``); anything unexpected becomes a bare
500 ``internal_error`` and its traceback stays in the log. All storage calls run in ONE
thread, one call at a time, so each upload's checks and writes are atomic with respect to
the others; the unauthenticated receipt route, which reaches that thread, has a request
budget per client address and overall (``cloud.ratelimit``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from nacl.signing import SigningKey

from cloud import routes, tlog_witness, wire, witness
from cloud.errors import BodyTooLarge, CloudError, RateLimited
from cloud.ratelimit import Rate, RequestBudget
from cloud.signed_request import (
    OWNER,
    RequestAuthError,
    RequestVerifier,
    gateway_principal,
)
from cloud.storage import OwnerMismatch, RelayStorage, UnknownGateway
from cloud.wire import MalformedMessage, UploadBatch, WireReceipt
from gateway.trust.base64url import b64u_decode, b64u_encode
from groundwork.files import write_file
from store import cosignature, note
from store.checkpoint import ORIGIN_PREFIX

log = logging.getLogger("threshold.relay")

T = TypeVar("T")
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
RELAY_KEY_FILE = "relay.key"
DATABASE_FILE = "relay.sqlite3"


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
    return web.json_response(body, status=status, content_type=routes.PROBLEM_TYPE, headers=headers)


class Relay:
    """The relay over one data directory: ``DIR/relay.sqlite3`` and ``DIR/relay.key``."""

    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], int] = now_ms,
        receipts_per_client: Rate = RECEIPTS_PER_CLIENT,
        receipts_overall: Rate = RECEIPTS_OVERALL,
        max_clients: int = 10_000,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.key = load_or_create_relay_key(directory)
        self.public_key = bytes(self.key.verify_key)
        self.relay_id = relay_id_of(self.public_key)
        self._clock = clock
        self._storage = RelayStorage.open(directory / DATABASE_FILE)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-storage")
        self._verifier = RequestVerifier(not_before=clock() / 1000 - 1)
        # A public key whose secret half is thrown away at once: nothing verifies under it.
        self._nobody_key = bytes(SigningKey.generate().verify_key)
        self._receipt_budget = RequestBudget(
            receipts_per_client, receipts_overall, max_clients=max_clients
        )
        self._witness_budget = RequestBudget(
            receipts_per_client, receipts_overall, max_clients=max_clients
        )
        self._openapi = routes.openapi_document()
        self.cpu_s = 0.0

    @property
    def storage(self) -> RelayStorage:
        """The relay's tables, for reading what it holds (tests, local commands). Writes go
        through the HTTP routes, which run them on the storage thread."""
        return self._storage

    async def _run(self, fn: Callable[[RelayStorage], T]) -> T:
        def timed() -> T:
            started = time.thread_time()
            try:
                return fn(self._storage)
            finally:
                self.cpu_s += time.thread_time() - started

        return await asyncio.get_running_loop().run_in_executor(self._thread, timed)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._storage.close()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        handlers: dict[str, Handler] = {
            "openapi": self._openapi_json,
            "time": self._time,
            "receipt": self._receipt,
            "upload": self._upload,
            "mailbox": self._mailbox,
            "owner_entries": self._owner_entries,
            "owner_checkpoints": self._owner_checkpoints,
            "owner_alarms": self._owner_alarms,
            "owner_post_mail": self._owner_post_mail,
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

    async def _authenticate(self, request: web.Request, principal: str, key: bytes) -> bytes:
        body = await request.read()
        if request.headers.get("Threshold-Principal") != principal:
            raise RequestAuthError("this endpoint needs another principal")
        self._verifier.verify(
            key, request.method, request.path_qs, body, request.headers, self._clock() / 1000
        )
        return body

    async def _registered_keys(self, gateway_id: str) -> tuple[bytes, bytes]:
        """(gateway key, owner key) of a registered gateway. For an unknown id, keys nobody
        holds: the request then fails exactly as a bad signature does, so an unauthenticated
        caller cannot learn which gateway ids are registered."""
        try:
            record = await self._run(lambda s: s.gateway(gateway_id))
        except UnknownGateway:
            return self._nobody_key, self._nobody_key
        return record.public_key, record.owner_key

    async def _as_gateway(self, request: web.Request) -> tuple[str, bytes]:
        gateway_id = request.match_info["gw"]
        gateway_key, _ = await self._registered_keys(gateway_id)
        body = await self._authenticate(request, gateway_principal(gateway_id), gateway_key)
        return gateway_id, body

    async def _as_owner(self, request: web.Request) -> tuple[str, bytes]:
        gateway_id = request.match_info["gw"]
        _, owner_key = await self._registered_keys(gateway_id)
        body = await self._authenticate(request, OWNER, owner_key)
        return gateway_id, body

    # Gateway ---------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        gateway_id, body = await self._as_gateway(request)
        batch = wire.decode_batch(body)
        if sum(len(e) for e in batch.entries) > wire.MAX_BATCH_BYTES:
            raise MalformedMessage("a batch carries at most 1 MiB of entries")
        size, outcome = await self._run(lambda s: self._ingest(s, gateway_id, batch))
        if isinstance(outcome, witness.Refused):
            status = 409 if outcome.finding is not witness.Finding.MALFORMED else 400
            return problem(status, outcome.finding.value, outcome.detail, acked_size=size)
        cosignature = outcome
        return web.json_response(
            {
                "acked_size": size,
                "relay_id": self.relay_id,
                "relay_key": base64.b64encode(self.public_key).decode(),
                "cosignature": base64.b64encode(cosignature).decode(),
                "tree_size": batch.checkpoint.checkpoint.tree_size,
            }
        )

    def _ingest(
        self, storage: RelayStorage, gateway_id: str, batch: UploadBatch
    ) -> tuple[int, bytes | witness.Refused]:
        """(the held size after this upload, the cosignature or why it was refused)."""
        record = storage.gateway(gateway_id)
        held = storage.held_size(gateway_id)
        cp_size = batch.checkpoint.checkpoint.tree_size
        seen = storage.witnessed_for_batch(gateway_id, cp_size, held, max(held, batch.end))
        verdict = witness.check_batch(
            batch, gateway_id, record.public_key, storage.nodes(gateway_id), held, seen
        )
        if isinstance(verdict, witness.Refused):
            if verdict.finding.is_alarm:
                storage.add_alarm(gateway_id, verdict.finding.value, verdict.detail, self._clock())
            return held, verdict
        cosignature = wire.cosign(
            self.key, self.relay_id, verdict.checkpoint.checkpoint, self._clock() // 1000
        )
        storage.accept(gateway_id, verdict, cosignature, self._clock())
        return verdict.new_size, cosignature

    async def _mailbox(self, request: web.Request) -> web.Response:
        gateway_id, _ = await self._as_gateway(request)
        after = _query_int(request, "after", 0)
        items = await self._run(lambda s: s.mail_after(gateway_id, after, 100))
        return web.json_response(
            {"items": [{"id": m.id, "sealed": wire.b64(m.sealed)} for m in items]}
        )

    async def _openapi_json(self, request: web.Request) -> web.Response:
        return web.json_response(self._openapi)

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
        refused = await self._run(lambda s: self._witness_receipt(s, receipt))
        if refused is not None:
            status = 409 if refused.finding.is_alarm else 400
            return problem(status, refused.finding.value, refused.detail)
        return web.json_response({"witnessed": receipt.checkpoint.checkpoint.tree_size})

    def _witness_receipt(
        self, storage: RelayStorage, receipt: WireReceipt
    ) -> witness.Refused | None:
        # An unknown gateway gets a key nobody holds and an empty log, then the same queries
        # and checks: its receipt is refused exactly as a forged one for a registered gateway
        # is, so the answer does not tell which gateway ids exist.
        state = storage.witness_state(receipt.gateway)
        gateway_key, held = (self._nobody_key, 0) if state is None else state
        size = receipt.checkpoint.checkpoint.tree_size
        refused = witness.check_receipt(
            receipt,
            gateway_key,
            storage.nodes(receipt.gateway),
            held,
            storage.witnessed_at(receipt.gateway, size),
        )
        if refused is not None:
            if refused.finding.is_alarm:
                storage.add_alarm(
                    receipt.gateway, refused.finding.value, refused.detail, self._clock()
                )
            return refused
        storage.add_witnessed(receipt.gateway, receipt.checkpoint, "receipt")
        return None

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
        answer = await self._run(lambda s: self._add_checkpoint(s, body))
        if answer.status in (200, 409):
            return web.Response(
                status=answer.status,
                body=answer.body.encode(),
                content_type=None,
                headers={"Content-Type": answer.content_type},
            )
        return problem(answer.status, answer.code, answer.body)

    def _add_checkpoint(self, storage: RelayStorage, body: bytes) -> tlog_witness.Answer:
        """Check and record in one step of the storage thread: atomic, as the spec asks."""

        def latest(origin: str) -> tlog_witness.Latest | None:
            found = storage.witness_latest(origin)
            return None if found is None else tlog_witness.Latest(found[0], found[1])

        answer, origin = tlog_witness.decide(
            body,
            lambda origin: self._log_verifier(storage, origin),
            latest,
            self.key,
            self.relay_id,
            self._clock() // 1000,
        )
        if answer.latest is not None and origin is not None:
            request = tlog_witness.parse_request(body)
            cosigned = request.checkpoint + answer.body
            storage.set_witness_latest(
                origin, answer.latest.tree_size, answer.latest.root_hash, cosigned, self._clock()
            )
        return answer

    @staticmethod
    def _log_verifier(storage: RelayStorage, origin: str) -> note.Verifier | None:
        """A registered gateway's log (origin ``threshold.example/gw/<id>``), or a log added
        with ``threshold cloud witness-log``."""
        vkey = storage.witness_log_vkey(origin)
        if vkey is not None:
            return note.parse_vkey(vkey)
        if origin.startswith(ORIGIN_PREFIX):
            key = storage.gateway_key_for(origin[len(ORIGIN_PREFIX) :])
            if key is not None:
                return note.ed25519_verifier(origin, key)
        return None

    async def _witness_checkpoint(self, request: web.Request) -> web.Response:
        wanted = request.match_info["origin_hash"]
        found = await self._run(lambda s: s.witness_latest_by_hash(wanted))
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
        await self._run(lambda s: s.add_witness_log(verifier.name, vkey.strip(), self._clock()))
        return verifier.name

    # Owner -----------------------------------------------------------------------------------

    async def _owner_entries(self, request: web.Request) -> web.Response:
        gateway_id, _ = await self._as_owner(request)
        since = _query_int(request, "since", 0)
        limit = min(_query_int(request, "limit", MAX_READ_ENTRIES), MAX_READ_ENTRIES)
        rows = await self._run(
            lambda s: (s.entries(gateway_id, since, limit), s.held_size(gateway_id))
        )
        entries, held = rows
        return web.json_response(
            {
                "held_size": held,
                "entries": [{"index": i, "sealed": wire.b64(sealed)} for i, sealed in entries],
            }
        )

    async def _owner_checkpoints(self, request: web.Request) -> web.Response:
        gateway_id, _ = await self._as_owner(request)
        records, record = await self._run(
            lambda s: (s.witnessed(gateway_id), s.gateway(gateway_id))
        )
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
        alarms = await self._run(lambda s: s.alarms(gateway_id))
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
        item_id = await self._run(lambda s: s.post_mail(gateway_id, sealed, self._clock()))
        return web.json_response({"id": item_id}, status=201)

    def held(self, gateway_id: str) -> int:
        """How many entries the relay holds for a gateway (read on a private connection)."""
        storage = RelayStorage.open(self.directory / DATABASE_FILE)
        try:
            return storage.held_size(gateway_id)
        finally:
            storage.close()

    # Registration (local, for `threshold cloud register-gateway --dir`) ----------------------

    async def register_gateway(self, gateway_id: str, public_key: bytes, owner_key: bytes) -> None:
        await self._run(
            lambda s: s.register_gateway(gateway_id, public_key, owner_key, self._clock())
        )


_QUERY_INT = re.compile(r"[0-9]{1,16}")


def _query_int(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    # ASCII digits only: str.isdigit() also passes superscripts, which int() refuses.
    if not _QUERY_INT.fullmatch(text):
        raise MalformedMessage(f"query parameter {name} must be a non-negative integer")
    return int(text)


class RelayServer:
    """A relay listening on a TCP address until ``stop()`` (tests, the demo, the CLI)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> str:
        self._runner = web.AppRunner(self.relay.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        # The runner has this one site, so its first address is the port the OS chose.
        self.port = int(self._runner.addresses[0][1])
        scheme = "https" if ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.relay.close()
