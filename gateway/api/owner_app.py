"""The owner app's handlers: the app itself (``/app/``), its JSON API (``/v1/app/...``) and the
root-key routes that manage devices (``/v1/owner/enrollments``, ``/v1/owner/devices``).

docs/owner-app.md. Their routes are in the API's one table (:data:`gateway.api.routes.
APP_ROUTES`), so ``/v1/openapi.json`` documents them, the app's page and assets included: they
are served by the same server under the same rules, and a client generator simply ignores the
``text/html`` ones. Without an owner app (``[app] enabled = false``) they answer 404.

Authentication, in :func:`app_session` (a middleware): ``/v1/app/`` routes need the session
cookie
(``__Host-`` prefixed, ``HttpOnly; Secure; SameSite=Strict``), and every POST needs the
session's CSRF token in ``X-CSRF-Token`` and an ``Origin`` equal to the app's one origin.
Enrollment and sign-in have no session yet: they need the origin, and a passkey. Every
response of the app carries a strict Content-Security-Policy (nothing from any other origin,
no inline script or style) and is never cached by anything but the app's service worker.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web

from gateway.api.bodies import read_body
from gateway.api.camera import owner_snapshot
from gateway.api.context import APP_SESSION, CTX, Handler
from gateway.api.problems import Problem, problem_response
from gateway.owner.acts import Role, parse_act
from gateway.owner.app import OwnerApp
from gateway.owner.errors import BadAppRequest, CsrfRefused, MediaUnknown
from gateway.owner.history import Filters
from gateway.owner.sessions import AppSession

COOKIE = "__Host-threshold-session"
CSRF_HEADER = "X-CSRF-Token"
HEARTBEAT_S = 15.0
APP_PREFIX = "/v1/app/"
#: The routes a browser reaches before it has a session.
_PUBLIC = frozenset(
    {"/v1/app/enroll/options", "/v1/app/enroll", "/v1/app/signin/options", "/v1/app/signin"}
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "media-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

#: The paths of the app's own page and files, and of the root key's device routes: 404 when the
#: gateway runs without the app.
APP_PATHS = ("/app/", APP_PREFIX, "/v1/owner/enrollments", "/v1/owner/devices")


# ---------------------------------------------------------------------------------------------
# The app's files, read once from the package (gateway/web/).


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


SHELL_VERSION_MARK = b"__SHELL_VERSION__"


def load_assets() -> dict[str, Asset]:
    """Every file of ``gateway/web`` by name; the service worker learns the shell's version
    (a hash of every other file), so any change to the app installs a new worker."""
    files = {
        f.name: f.read_bytes()
        for f in resources.files("gateway.web").iterdir()
        if f.is_file() and not f.name.endswith((".py", ".pyc"))
    }
    digest = hashlib.sha256()
    for name in sorted(files):
        if name != "sw.js":
            digest.update(name.encode() + b"\0" + files[name])
    version = digest.hexdigest()[:16].encode()
    if "sw.js" in files:
        files["sw.js"] = files["sw.js"].replace(SHELL_VERSION_MARK, version)
    assets = {}
    for name, body in files.items():
        kind = (
            {
                ".js": "text/javascript",
                ".webmanifest": "application/manifest+json",
                ".svg": "image/svg+xml",
            }.get("." + name.rsplit(".", 1)[-1])
            or mimetypes.guess_type(name)[0]
            or "text/plain"
        )
        if kind.startswith("text/") or kind.endswith(("json", "javascript")):
            kind += "; charset=utf-8"
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[name] = Asset(body, kind, etag)
    return assets


def _asset_response(request: web.Request, name: str, assets: dict[str, Asset]) -> web.Response:
    asset = assets.get(name)
    if asset is None:
        return problem_response(404, "not_found", f"no app file {name!r}")
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
    if name == "sw.js":
        headers["Service-Worker-Allowed"] = "/app/"
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})


# ---------------------------------------------------------------------------------------------
# Parsing and the session.

Body = dict[str, Any]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


async def _body(request: web.Request, allowed: set[str]) -> Body:
    return parse_app_body(await read_body(request), allowed)


def parse_app_body(raw: bytes, allowed: set[str]) -> Body:
    """An app request's JSON object with only ``allowed`` fields, or BadAppRequest (pure:
    tests/fuzz feeds it directly)."""
    if not raw:
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise BadAppRequest("malformed JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadAppRequest(f"malformed JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadAppRequest("the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise BadAppRequest(f"unknown field {sorted(unknown)[0]!r}")
    if b"\\u" in raw:
        # JSON can spell a lone surrogate ("\\ud800"), which is no text: hashing an
        # enrollment token made of one raised UnicodeEncodeError, a 500 on a public route.
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadAppRequest("the body holds a string that is not valid Unicode") from None
        except RecursionError:
            raise BadAppRequest("malformed JSON (nested too deeply)") from None
    return body


def _string(body: Body, key: str, limit: int = 200) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise BadAppRequest(f"{key} must be a string of 1 to {limit} characters")
    return value


def _flag(body: Body, key: str) -> bool:
    value = body.get(key)
    if not isinstance(value, bool):
        raise BadAppRequest(f"{key} must be true or false")
    return value


def _set_cookie(response: web.Response, cookie: str, max_age: float) -> None:
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(max_age),
        path="/",
        secure=True,
        httponly=True,
        samesite="Strict",
    )


async def _signed_in(app: OwnerApp, cookie: str, session: AppSession) -> web.Response:
    response = web.json_response(await app.me(session))
    _set_cookie(response, cookie, app.settings.session_ttl_s)
    return response


def owner_app_of(request: web.Request) -> OwnerApp:
    """The running owner app; a 404 when the gateway runs without it."""
    app = request.app[CTX].owner_app
    if app is None:
        raise Problem(404, "not_found", "the owner app is off on this gateway ([app] enabled)")
    return app


@web.middleware
async def app_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The session cookie, the CSRF token and the origin, for ``/v1/app/`` (docs/owner-app.md);
    a refusal is an :class:`~gateway.owner.errors.OwnerAppError`, answered as a problem."""
    if request.path.startswith(APP_PATHS) and not request.match_info.http_exception:
        app = owner_app_of(request)
        if request.path.startswith(APP_PREFIX):
            if request.method != "GET":
                origin = request.headers.get("Origin")
                if origin not in app.origins:
                    raise CsrfRefused(f"requests come from the app's origin {app.origin} only")
            if request.path not in _PUBLIC:
                session = app.sessions.get(request.cookies.get(COOKIE))
                if request.method != "GET":
                    app.sessions.check_csrf(session, request.headers.get(CSRF_HEADER))
                request[APP_SESSION] = session
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The app's Content-Security-Policy and friends on every answer of the app (an
    ``on_response_prepare`` hook: errors too)."""
    if request.path.startswith(("/app/", APP_PREFIX)):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith(APP_PREFIX):
            response.headers.setdefault("Cache-Control", "no-store")


async def end_streams(app: web.Application) -> None:
    """End every open app stream (an ``on_shutdown`` hook: the server is stopping)."""
    owner_app = app[CTX].owner_app
    if owner_app is not None:
        owner_app.feed.end_all()


# ---------------------------------------------------------------------------------------------
# Handlers.


def handlers() -> dict[str, Handler]:
    """The handler of every route of :data:`gateway.api.routes.APP_ROUTES`, by name."""
    assets = load_assets()

    async def shell(request: web.Request) -> web.StreamResponse:
        return _asset_response(request, "index.html", assets)

    async def asset(request: web.Request) -> web.StreamResponse:
        return _asset_response(request, request.match_info["asset"], assets)

    async def enroll_options(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"token"})
        out = await owner_app_of(request).enrollment_options(_string(body, "token"))
        return web.json_response(out)

    async def enroll(request: web.Request) -> web.StreamResponse:
        app = owner_app_of(request)
        body = await _body(request, {"ceremony", "credential"})
        cookie, session = await app.finish_enrollment(body.get("ceremony"), body.get("credential"))
        return await _signed_in(app, cookie, session)

    async def signin_options(request: web.Request) -> web.StreamResponse:
        await _body(request, set())
        return web.json_response(owner_app_of(request).sign_in_options())

    async def signin(request: web.Request) -> web.StreamResponse:
        app = owner_app_of(request)
        body = await _body(request, {"ceremony", "credential"})
        cookie, session = await app.sign_in(body.get("ceremony"), body.get("credential"))
        return await _signed_in(app, cookie, session)

    async def signout(request: web.Request) -> web.StreamResponse:
        owner_app_of(request).sessions.end(request.cookies.get(COOKIE))
        response = web.json_response({"signed_out": True})
        response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
        return response

    async def me(request: web.Request) -> web.StreamResponse:
        return web.json_response(await owner_app_of(request).me(request[APP_SESSION]))

    async def now(request: web.Request) -> web.StreamResponse:
        return web.json_response(await owner_app_of(request).now())

    async def stream(request: web.Request) -> web.StreamResponse:
        app = owner_app_of(request)
        session = request[APP_SESSION]
        try:
            after = int(request.headers.get("Last-Event-ID") or request.query.get("after") or 0)
        except ValueError:
            raise BadAppRequest("Last-Event-ID must be an integer") from None
        subscription = app.feed.subscribe(session.device_id, after)
        after_seq = app.feed.last_seq  # what comes after this was live, not replayed
        try:
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
            )
            await response.prepare(request)
            await response.write(b"retry: 2000\n: open\n\n")
            while app.sessions.alive(session):
                try:
                    item = await subscription.next(HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": ping\n\n")
                    continue
                if item is None:
                    break
                data = json.dumps(item.notice.to_json(), separators=(",", ":"))
                await response.write(f"id: {item.seq}\nevent: notice\ndata: {data}\n\n".encode())
                if item.seq > after_seq:
                    # A live notice (not one replayed on reconnect): how long it took.
                    app.feed.delivered(time.perf_counter() - item.queued_at)
        except ConnectionError:
            pass  # the browser went away (a new page, a closed tab): nothing to tell it
        finally:
            subscription.close()
        return response

    async def waiting(request: web.Request) -> web.StreamResponse:
        return web.json_response(owner_app_of(request).waiting(request.match_info["session"]))

    async def act_options(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"act"})
        app = owner_app_of(request)
        return web.json_response(
            await app.act_options(request[APP_SESSION], parse_act(body.get("act")))
        )

    async def act(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"act", "ceremony", "credential"})
        app = owner_app_of(request)
        out = await app.perform(
            request[APP_SESSION],
            parse_act(body.get("act")),
            body.get("ceremony"),
            body.get("credential"),
        )
        return web.json_response(out)

    async def lock(request: web.Request) -> web.StreamResponse:
        await _body(request, set())
        app = owner_app_of(request)
        return web.json_response(await app.lock(request[APP_SESSION], request.match_info["door"]))

    async def history(request: web.Request) -> web.StreamResponse:
        q = request.query
        filters = Filters(
            q.get("person", "")[:64], q.get("purpose", "")[:32], q.get("door", "")[:32]
        )
        return web.json_response(await owner_app_of(request).history(filters))

    async def media(request: web.Request) -> web.StreamResponse:
        try:
            index = int(request.match_info["entry"])
        except ValueError:
            raise MediaUnknown("an entry index is an integer") from None
        path, content_type = await owner_app_of(request).media(index)
        return web.FileResponse(
            path, headers={"Content-Type": content_type, "Cache-Control": "private, max-age=3600"}
        )

    async def snapshot(request: web.Request) -> web.StreamResponse:
        return await owner_snapshot(request)

    async def devices(request: web.Request) -> web.StreamResponse:
        return web.json_response({"devices": await owner_app_of(request).devices()})

    async def rename(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"name"})
        await owner_app_of(request).rename(
            request[APP_SESSION], request.match_info["device"], _string(body, "name", 80)
        )
        return web.json_response({"device": request.match_info["device"]})

    async def permission(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"may_open"})
        may_open = _flag(body, "may_open")
        device = request.match_info["device"]
        await owner_app_of(request).allow_open(request[APP_SESSION], device, may_open)
        return web.json_response({"device": device, "may_open": may_open})

    async def revoke(request: web.Request) -> web.StreamResponse:
        await _body(request, set())
        await owner_app_of(request).revoke(request[APP_SESSION], request.match_info["device"])
        return web.json_response({"device": request.match_info["device"], "revoked": True})

    async def push(request: web.Request) -> web.StreamResponse:
        return web.json_response(await owner_app_of(request).push_settings(request[APP_SESSION]))

    async def push_subscribe(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"subscription", "kinds"})
        app = owner_app_of(request)
        out = await app.push_subscribe(
            request[APP_SESSION], body.get("subscription"), body.get("kinds")
        )
        return web.json_response(out)

    async def push_preferences(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"kinds"})
        if "kinds" not in body:
            raise BadAppRequest("kinds is required")
        app = owner_app_of(request)
        return web.json_response(await app.push_preferences(request[APP_SESSION], body["kinds"]))

    async def push_unsubscribe(request: web.Request) -> web.StreamResponse:
        await _body(request, set())
        app = owner_app_of(request)
        return web.json_response(await app.push_unsubscribe(request[APP_SESSION]))

    # The root key's routes (the owner_signature middleware has checked the signature).

    async def owner_enroll(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"role", "name"})
        try:
            role = Role(body.get("role", "owner"))
        except ValueError:
            raise BadAppRequest("role is owner or member") from None
        name = body.get("name", "Owner's device" if role is Role.OWNER else "Household device")
        if not isinstance(name, str):
            raise BadAppRequest("name must be a string")
        made = await owner_app_of(request).create_enrollment(role, name)
        return web.json_response(
            {
                "link": made.link,
                "expires_ms": made.expires_ms,
                "role": made.role.value,
                "name": made.name,
            },
            status=201,
        )

    async def owner_devices(request: web.Request) -> web.StreamResponse:
        return web.json_response({"devices": await owner_app_of(request).devices()})

    async def owner_rename(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"name"})
        await owner_app_of(request).rename(
            None, request.match_info["device"], _string(body, "name", 80)
        )
        return web.json_response({"device": request.match_info["device"]})

    async def owner_permission(request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"may_open"})
        may_open = _flag(body, "may_open")
        device = request.match_info["device"]
        await owner_app_of(request).allow_open(None, device, may_open)
        return web.json_response({"device": device, "may_open": may_open})

    async def owner_revoke(request: web.Request) -> web.StreamResponse:
        await _body(request, set())
        await owner_app_of(request).revoke(None, request.match_info["device"])
        return web.json_response({"device": request.match_info["device"], "revoked": True})

    return {
        "app_shell": shell,
        "app_asset": asset,
        "app_enroll_options": enroll_options,
        "app_enroll": enroll,
        "app_signin_options": signin_options,
        "app_signin": signin,
        "app_signout": signout,
        "app_me": me,
        "app_now": now,
        "app_events_stream": stream,
        "app_session": waiting,
        "app_act_options": act_options,
        "app_act": act,
        "app_lock": lock,
        "app_history": history,
        "app_media": media,
        "app_snapshot": snapshot,
        "app_devices": devices,
        "app_device_rename": rename,
        "app_device_revoke": revoke,
        "app_device_permission": permission,
        "app_push": push,
        "app_push_subscribe": push_subscribe,
        "app_push_preferences": push_preferences,
        "app_push_unsubscribe": push_unsubscribe,
        "owner_enrollments": owner_enroll,
        "owner_devices": owner_devices,
        "owner_device_rename": owner_rename,
        "owner_device_revoke": owner_revoke,
        "owner_device_permission": owner_permission,
    }
