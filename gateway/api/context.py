"""What every part of the LAN API shares: the context the app carries and the request keys.

One :class:`ApiContext` per running API, built by ``gateway.app.wiring`` and stored on the
aiohttp application under :data:`CTX`; handlers and middlewares read it from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from gateway.access.service import AccessService
from gateway.api.listener import ConnectionLimits
from gateway.api.ratelimit import RateLimiter
from gateway.owner.app import OwnerApp
from gateway.owner.invitations import Visitors
from gateway.owner.sessions import AppSession
from gateway.trust.owner_request import OwnerRequestVerifier
from video.camera import Camera

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class ApiContext:
    service: AccessService
    gateway_id: str
    public_key: str
    tls_fingerprint: str | None
    owner_verifier: OwnerRequestVerifier
    client_limiter: RateLimiter
    ticket_limiter: RateLimiter
    max_body_bytes: int
    #: The camera, for the owner's live view and snapshot; None when none is configured.
    camera: Camera | None = None
    #: Every camera by name (``?camera=NAME`` on the live view and snapshot); the first is
    #: ``camera``, the one shown without the parameter.
    cameras: Mapping[str, Camera] = field(default_factory=dict)
    #: The doors each camera watches, by name (empty: every door).
    camera_doors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Requests handled at once; the rest wait their turn (FIFO) outside the event loop's
    #: ready queue, so a flood cannot starve the lock's Bluetooth exchange of loop turns.
    admission: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    wall_clock: Callable[[], float] = time.time
    #: How many connections, from whom, for how long (:mod:`gateway.api.listener`).
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    #: Told of every answer: route template, status, problem code (``ok`` for success);
    #: the gateway's metrics. Must return at once and never raise.
    on_answer: Callable[[str, int, str], None] | None = None
    #: The owner's web app (docs/owner-app.md); None when ``[app] enabled = false``, and then
    #: its routes answer 404.
    owner_app: OwnerApp | None = None
    #: Keys for people: the household issuer and the invitations (docs/visitors.md); None
    #: when the gateway runs without the owner app.
    visitors: Visitors | None = None


CTX: web.AppKey[ApiContext] = web.AppKey("threshold_ctx", ApiContext)
ARRIVED: web.RequestKey[float] = web.RequestKey("threshold_arrived", float)
RAW_BODY: web.RequestKey[bytes] = web.RequestKey("threshold_raw_body", bytes)
#: The owner app's signed-in session of the request (set by the app_session middleware).
APP_SESSION: web.RequestKey[AppSession] = web.RequestKey("threshold_app_session", AppSession)
