"""The owner app's one entry point: enrollment, sign-in, acts, devices, what is happening now
and what happened (docs/owner-app.md).

:class:`OwnerApp` holds the relying party (:class:`~gateway.owner.passkeys.Passkeys`), the
signed-in sessions, the ceremonies in progress and the live feed; it reads and writes the
owner's devices in the store (one transaction with each audit entry) and acts through the
:class:`~gateway.access.service.AccessService`. The HTTP routes (``gateway.api.owner_app``)
only parse, authenticate the cookie and CSRF token, and call it.

Ceremonies in progress are kept in memory, keyed by their challenge, each taken at most once
and only within :attr:`AppSettings.ceremony_ttl_s`: a replayed assertion finds nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ble.errors import LockError
from gateway.access.runner import SessionView
from gateway.access.service import AccessService
from gateway.owner.acts import (
    NEEDS_ASSERTION,
    Act,
    ActKind,
    Role,
    act_challenge,
    may,
)
from gateway.owner.errors import (
    AssertionRefused,
    BadAppRequest,
    DeviceUnknown,
    EnrollmentRefused,
    MediaUnknown,
    RoleForbidden,
)
from gateway.owner.feed import LiveFeed
from gateway.owner.history import ClipCheck, Filters, LogEntry, visit_cards, visits_per_day
from gateway.owner.passkeys import Passkeys, credential_id_of
from gateway.owner.push_prefs import PUSH_KINDS, parse_kinds, parse_subscription
from gateway.owner.sessions import AppSession, AppSessions
from gateway.trust.base64url import b64u_decode, b64u_encode
from store import audit_log
from store.db import Store
from store.devices import DeviceRecord, DeviceTables, EnrollmentOutcome
from store.push import PushTables
from store.transaction import StoreTransaction
from store.verify import verify_log
from video.camera import Camera

log = logging.getLogger("threshold.owner")

MAX_CEREMONIES = 512
MAX_NAME = 40
FINISHED = frozenset({"closed", "denied", "failed"})
HISTORY_ENTRIES = 20_000
MEDIA_TYPES = {"clip.recorded": "video/mp4", "snapshot.saved": "image/jpeg"}


@dataclass(frozen=True, slots=True)
class AppSettings:
    #: The WebAuthn relying party ID: the host name the app is served under (never an IP).
    rp_id: str
    zone: ZoneInfo
    #: Where clips and snapshots may be read from (every camera's clip directory).
    clip_dirs: tuple[Path, ...] = ()
    session_ttl_s: float = 3600.0
    enroll_ttl_s: float = 600.0
    ceremony_ttl_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Enrollment:
    token: str
    link: str
    role: Role
    name: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class _Ceremony:
    kind: str  # "enroll" or "assert"
    expires_at: float
    act: Act | None = None
    device_id: str | None = None
    token_hash: bytes | None = None
    role: Role | None = None
    name: str = ""


def _hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not 0 < len(name) <= MAX_NAME or not name.isprintable():
        raise BadAppRequest(f"a device name is 1 to {MAX_NAME} printable characters")
    return name


def device_json(device: DeviceRecord) -> dict[str, Any]:
    return {
        "device": device.device_id,
        "name": device.name,
        "role": device.role,
        "created_ms": device.created_ms,
        "last_used_ms": device.last_used_ms,
        "revoked_ms": device.revoked_ms,
        "may_open": device.role == Role.OWNER.value or device.may_open,
    }


def _view_json(view: SessionView) -> dict[str, Any]:
    return {**view.to_json(), "issuer": view.issuer}


class OwnerApp:
    """See the module docstring."""

    def __init__(
        self,
        settings: AppSettings,
        store: Store,
        service: AccessService,
        *,
        feed: LiveFeed,
        camera: Camera | None = None,
        cameras: Mapping[str, Camera] | None = None,
        camera_doors: Mapping[str, tuple[str, ...]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.service = service
        #: The first camera (the one shown without a name), and every camera by name with
        #: the doors it watches (none: every door).
        self.camera = camera
        self.cameras: Mapping[str, Camera] = cameras or {}
        self.camera_doors: Mapping[str, tuple[str, ...]] = camera_doors or {}
        self.feed = feed
        self.sessions = AppSessions(settings.session_ttl_s, clock)
        self.passkeys = Passkeys(settings.rp_id, f"https://{settings.rp_id}")
        self._clock = clock
        self._ceremonies: OrderedDict[bytes, _Ceremony] = OrderedDict()
        self._hashes: dict[tuple[str, int, int], str] = {}
        #: The gateway's VAPID public key (the app's ``applicationServerKey``), or None when
        #: Web Push is off (``[push] enabled = false``).
        self.push_key: str | None = None

    def bind(self, port: int) -> None:
        """The app's one origin, once the API's port is known."""
        suffix = "" if port == 443 else f":{port}"
        self.passkeys.origin = f"https://{self.settings.rp_id}{suffix}"

    def reach(self, origin: str, *also: str) -> None:
        """Remote reach (docs/remote.md): the app's origin through the relay, and the same
        name on the home network's port; all under the one RP ID, so one passkey serves."""
        self.passkeys.origin = origin
        self.passkeys.also = tuple(o for o in also if o != origin)

    @property
    def origin(self) -> str:
        """The app's origin: the one its links name."""
        return self.passkeys.origin

    @property
    def origins(self) -> list[str]:
        """Every origin the app answers (the CSRF origin check, the ceremonies)."""
        return self.passkeys.origins

    # -- ceremonies ----------------------------------------------------------------------------

    def _begin(self, challenge: bytes, ceremony: _Ceremony) -> str:
        now = self._clock()
        for key in [k for k, c in self._ceremonies.items() if c.expires_at <= now]:
            del self._ceremonies[key]
        while len(self._ceremonies) >= MAX_CEREMONIES:
            self._ceremonies.popitem(last=False)
        self._ceremonies[challenge] = ceremony
        return b64u_encode(challenge)

    def _take(self, ceremony_id: Any, kind: str) -> tuple[bytes, _Ceremony]:
        try:
            challenge = b64u_decode(ceremony_id) if isinstance(ceremony_id, str) else b""
        except ValueError:
            challenge = b""
        ceremony = self._ceremonies.pop(challenge, None)
        if ceremony is None or ceremony.kind != kind or ceremony.expires_at <= self._clock():
            raise AssertionRefused("unknown, used or expired ceremony: start again")
        return challenge, ceremony

    def _ceremony(self, kind: str, **fields: Any) -> _Ceremony:
        return _Ceremony(kind, self._clock() + self.settings.ceremony_ttl_s, **fields)

    # -- enrollment ----------------------------------------------------------------------------

    async def create_enrollment(self, role: Role, name: str) -> Enrollment:
        """A one-time link (the root key's signature was checked by the caller)."""
        name = _clean_name(name)
        token = b64u_encode(secrets.token_bytes(32))
        ttl_ms = round(self.settings.enroll_ttl_s * 1000)

        def write(tx: StoreTransaction) -> int:
            now = tx.now_ms()
            tx.devices.add_enrollment(_hash_token(token), role.value, name, now, ttl_ms)
            tx.append(
                "owner.enrollment_created",
                {"role": role.value, "name": name, "expires_ms": now + ttl_ms},
            )
            return now + ttl_ms

        expires_ms = await self.store.transact(write)
        link = f"{self.origin}/app/#enroll={token}"
        return Enrollment(token, link, role, name, expires_ms)

    async def enrollment_options(self, token: str) -> dict[str, Any]:
        token_hash = _hash_token(token)
        now_ms = time.time_ns() // 1_000_000
        outcome, record = await self.store.read(
            lambda conn: DeviceTables(conn).enrollment(token_hash, now_ms)
        )
        if outcome is not EnrollmentOutcome.USABLE or record is None:
            raise EnrollmentRefused(_enrollment_words(outcome))
        device_id = "d-" + secrets.token_hex(6)
        challenge = secrets.token_bytes(32)
        role = Role(record.role)
        ceremony_id = self._begin(
            challenge,
            self._ceremony(
                "enroll", device_id=device_id, token_hash=token_hash, role=role, name=record.name
            ),
        )
        options = self.passkeys.registration_options(
            challenge, device_id.encode(), f"{record.name} ({role.value})", []
        )
        return {"ceremony": ceremony_id, "options": options, "role": role, "name": record.name}

    async def finish_enrollment(self, ceremony_id: Any, credential: Any) -> tuple[str, AppSession]:
        """Verify the new passkey, spend the link, record the device: a signed-in session."""
        challenge, ceremony = self._take(ceremony_id, "enroll")
        assert ceremony.token_hash is not None
        assert ceremony.device_id is not None
        assert ceremony.role is not None
        new = self.passkeys.verify_registration(credential, challenge)
        device_id, role, name = ceremony.device_id, ceremony.role, ceremony.name
        token_hash = ceremony.token_hash

        def write(tx: StoreTransaction) -> bool:
            now = tx.now_ms()
            if not tx.devices.spend_enrollment(token_hash, device_id, now):
                return False
            tx.devices.add_device(
                device_id, new.credential_id, new.public_key, new.sign_count, role.value, name, now
            )
            body = {"device": device_id, "name": name, "role": role.value}
            tx.append("owner.device_enrolled", body)
            return True

        if not await self.store.transact(write):
            raise EnrollmentRefused("this enrollment link was already used or has expired")
        log.info("owner device %s (%s, %s) enrolled", device_id, name, role.value)
        return self.sessions.start(device_id, role)

    # -- sign-in and acts ----------------------------------------------------------------------

    def sign_in_options(self) -> dict[str, Any]:
        challenge = secrets.token_bytes(32)
        ceremony_id = self._begin(challenge, self._ceremony("assert", act=Act(ActKind.SIGN_IN)))
        return {"ceremony": ceremony_id, "options": self.passkeys.assertion_options(challenge, [])}

    async def sign_in(self, ceremony_id: Any, credential: Any) -> tuple[str, AppSession]:
        challenge, ceremony = self._take(ceremony_id, "assert")
        if ceremony.act != Act(ActKind.SIGN_IN):
            raise AssertionRefused("this ceremony was not for signing in")
        device = await self._verified_device(credential, challenge, None)
        return self.sessions.start(device.device_id, Role(device.role))

    async def act_options(self, session: AppSession, act: Act) -> dict[str, Any]:
        if act.kind not in NEEDS_ASSERTION or act.kind is ActKind.SIGN_IN:
            raise BadAppRequest(f"a {act.kind.value} act needs no passkey")
        await self._check_act(session, act)
        device = await self._device(session.device_id)
        nonce = secrets.token_bytes(32)
        challenge = act_challenge(act, session.device_id, nonce)
        ceremony_id = self._begin(
            challenge, self._ceremony("assert", act=act, device_id=session.device_id)
        )
        options = self.passkeys.assertion_options(challenge, [device.credential_id])
        return {"ceremony": ceremony_id, "options": options, "act": act.to_json()}

    async def perform(
        self, session: AppSession, act: Act, ceremony_id: Any, credential: Any
    ) -> dict[str, Any]:
        """Check the fresh assertion over exactly ``act`` by this device, then do it."""
        device = await self.authorise(session, act, ceremony_id, credential)
        by = f"device:{device.device_id}"
        log.info("owner act %s by %s", act.describe(), by)
        if act.kind in (ActKind.APPROVE, ActKind.DENY):
            view = await self.service.decide(act.target, act.kind is ActKind.APPROVE, by)
            return {"session": _view_json(view)}
        if act.kind is ActKind.UNLOCK:
            status = await self.service.owner_lock(act.target, "unlock", by=by)
            return {"door": act.target, "lock": status.lock.value, "door_state": status.door.value}
        raise BadAppRequest(f"a {act.kind.value} act is not done with a passkey")

    async def authorise(
        self, session: AppSession, act: Act, ceremony_id: Any, credential: Any
    ) -> DeviceRecord:
        """The device that made a fresh assertion over exactly ``act``, allowed to do it; the
        caller then does it (an invitation: :mod:`gateway.owner.invitations`)."""
        await self._check_act(session, act)
        challenge, ceremony = self._take(ceremony_id, "assert")
        if ceremony.act != act or ceremony.device_id != session.device_id:
            raise AssertionRefused("this assertion was made for another act or device")
        device = await self._verified_device(credential, challenge, session.device_id)
        # Read again with the assertion: a permission taken back meanwhile counts.
        self._check_role(session, act, device)
        return device

    async def lock(self, session: AppSession, door: str) -> dict[str, Any]:
        """Lock by hand: it lets nobody in, so the signed-in session is enough."""
        self._check_role(session, Act(ActKind.LOCK, door))
        status = await self.service.owner_lock(door, "lock", by=f"device:{session.device_id}")
        return {"door": door, "lock": status.lock.value, "door_state": status.door.value}

    async def _check_act(self, session: AppSession, act: Act) -> None:
        """May this session's device do ``act``: its role, and for a member whose role does
        not allow it, the owner's permission as the store holds it now."""
        if may(session.role, act.kind):
            return
        self._check_role(session, act, await self._device(session.device_id))

    def _check_role(
        self, session: AppSession, act: Act, device: DeviceRecord | None = None
    ) -> None:
        """The session's role, and (for a member) the owner's permission in ``device``."""
        may_open = device is not None and device.may_open
        if not may(session.role, act.kind, may_open=may_open):
            raise RoleForbidden(f"a {session.role.value} device may not {act.describe()}")

    async def me(self, session: AppSession) -> dict[str, Any]:
        """The signed-in device as the page needs it (its permission read now)."""
        device = await self._device(session.device_id)
        return {
            "device": session.device_id,
            "role": session.role.value,
            "may_open": may(session.role, ActKind.UNLOCK, may_open=device.may_open),
            "csrf": session.csrf,
            "gateway_id": self.service.settings.gateway_id,
            "doors": sorted(self.service.doors),
        }

    async def _device(self, device_id: str) -> DeviceRecord:
        device = await self.store.read(lambda conn: DeviceTables(conn).device(device_id))
        if device is None:
            raise DeviceUnknown(f"no device {device_id}")
        return device

    async def _verified_device(
        self, credential: Any, challenge: bytes, expected_device: str | None
    ) -> DeviceRecord:
        credential_id = credential_id_of(credential)
        device = await self.store.read(
            lambda conn: DeviceTables(conn).device_by_credential(credential_id)
        )
        if device is None or device.revoked:
            raise AssertionRefused("this passkey belongs to no enrolled device")
        if expected_device is not None and device.device_id != expected_device:
            raise AssertionRefused("this passkey is not the signed-in device's")
        count = self.passkeys.verify_assertion(
            credential, challenge, device.public_key, device.sign_count
        )

        def write(tx: StoreTransaction) -> bool:
            return tx.devices.record_use(device.device_id, count, tx.now_ms())

        if not await self.store.transact(write):
            raise AssertionRefused("this device was revoked")
        return device

    # -- devices -------------------------------------------------------------------------------

    async def devices(self) -> list[dict[str, Any]]:
        devices = await self.store.read(lambda conn: DeviceTables(conn).devices())
        return [device_json(d) for d in devices]

    async def rename(self, session: AppSession | None, device_id: str, name: str) -> None:
        member = session is not None and session.role is not Role.OWNER
        if member and session is not None and session.device_id != device_id:
            raise RoleForbidden("a member device may rename only itself")
        name = _clean_name(name)
        by = "owner" if session is None else f"device:{session.device_id}"

        def write(tx: StoreTransaction) -> bool:
            if not tx.devices.rename(device_id, name):
                return False
            tx.append("owner.device_renamed", {"device": device_id, "name": name, "by": by})
            return True

        if not await self.store.transact(write):
            raise DeviceUnknown(f"no active device {device_id}")

    async def allow_open(self, session: AppSession | None, device_id: str, may_open: bool) -> None:
        """Allow a member device to open doors (approve, deny, unlock), or stop it: owner
        only (the root key, or an owner device), recorded as ``owner.device_permission``."""
        if session is not None and session.role is not Role.OWNER:
            raise RoleForbidden("only an owner device may change what a device may do")
        by = "owner" if session is None else f"device:{session.device_id}"

        def write(tx: StoreTransaction) -> bool:
            if not tx.devices.set_may_open(device_id, may_open):
                return False
            tx.append(
                "owner.device_permission", {"device": device_id, "may_open": may_open, "by": by}
            )
            return True

        if not await self.store.transact(write):
            raise DeviceUnknown(f"no active member device {device_id}")
        log.info("member device %s may_open=%s (by %s)", device_id, may_open, by)

    async def revoke(self, session: AppSession | None, device_id: str) -> None:
        """Revoke a device: recorded, and its sessions and live streams end at once."""
        if session is not None and session.role is not Role.OWNER:
            raise RoleForbidden("only an owner device may revoke devices")
        by = "owner" if session is None else f"device:{session.device_id}"

        def write(tx: StoreTransaction) -> bool:
            if not tx.devices.revoke(device_id, tx.now_ms()):
                return False
            tx.append("owner.device_revoked", {"device": device_id, "by": by})
            return True

        if not await self.store.transact(write):
            raise DeviceUnknown(f"no active device {device_id}")
        ended = self.sessions.end_device(device_id)
        streams = self.feed.end_device(device_id)
        log.info(
            "owner device %s revoked by %s (%d sessions, %d streams)", device_id, by, ended, streams
        )

    # -- Web Push (docs/owner-app.md, "Notifications") -------------------------------------------

    async def push_settings(self, session: AppSession) -> dict[str, Any]:
        """Whether this device is subscribed, to what, and the key to subscribe with."""
        record = await self.store.read(lambda c: PushTables(c).of_device(session.device_id))
        return {
            "available": self.push_key is not None,
            "vapid_public_key": self.push_key,
            "subscribed": record is not None,
            "kinds": list(record.kinds) if record is not None else [],
            "choices": [{"kind": k.value, "label": label} for k, label in PUSH_KINDS.items()],
        }

    async def push_subscribe(
        self, session: AppSession, subscription: Any, kinds: Any
    ) -> dict[str, Any]:
        """Subscribe this device (replacing its subscription), recorded with its choices (the
        endpoint is a capability: it is stored, never written to the log)."""
        if self.push_key is None:
            raise BadAppRequest("Web Push is off on this gateway ([push] enabled)")
        parsed = parse_subscription(subscription)
        chosen = parse_kinds(kinds)
        device_id = session.device_id

        def write(tx: StoreTransaction) -> None:
            tx.push.put(device_id, parsed.endpoint, parsed.p256dh, parsed.auth, chosen, tx.now_ms())
            tx.append("owner.push_subscribed", {"device": device_id, "kinds": list(chosen)})

        await self.store.transact(write)
        log.info("owner device %s subscribed to Web Push", device_id)
        return await self.push_settings(session)

    async def push_preferences(self, session: AppSession, kinds: Any) -> dict[str, Any]:
        chosen = parse_kinds(kinds)
        device_id = session.device_id

        def write(tx: StoreTransaction) -> bool:
            if not tx.push.set_kinds(device_id, chosen):
                return False
            tx.append("owner.push_preferences", {"device": device_id, "kinds": list(chosen)})
            return True

        if not await self.store.transact(write):
            raise BadAppRequest("this device is not subscribed to notifications")
        return await self.push_settings(session)

    async def push_unsubscribe(self, session: AppSession) -> dict[str, Any]:
        device_id = session.device_id

        def write(tx: StoreTransaction) -> None:
            if tx.push.remove(device_id):
                tx.append("owner.push_unsubscribed", {"device": device_id})

        await self.store.transact(write)
        return await self.push_settings(session)

    # -- what is happening now -----------------------------------------------------------------

    async def now(self) -> dict[str, Any]:
        views = self.service.sessions()
        open_views = [v for v in views if v.state not in FINISHED]
        doors = await asyncio.gather(
            *(self._door_now(name, open_views) for name in sorted(self.service.doors))
        )
        return {
            "doors": list(doors),
            "camera": self._camera_now(self.camera),
            "cameras": [
                {
                    "name": name,
                    "doors": list(self.camera_doors.get(name, ())),
                    **self._camera_now(c),
                }
                for name, c in self.cameras.items()
            ],
            "sessions": [_view_json(v) for v in open_views],
            "awaiting": [_view_json(v) for v in open_views if v.state == "awaiting_approval"],
            "alarms": [_view_json(v) for v in open_views if v.state == "alarm"],
            "feed_seq": self.feed.last_seq,
        }

    async def _door_now(self, door: str, open_views: list[SessionView]) -> dict[str, Any]:
        out: dict[str, Any] = {"door": door}
        try:
            status = await self.service.read_door(door, timeout_s=3.0)
        except (LockError, TimeoutError) as exc:
            out.update(lock="unknown", door_state="unknown", error=getattr(exc, "code", "timeout"))
        else:
            out.update(
                lock=status.lock.value,
                door_state=status.door.value,
                battery_percent=status.battery_percent,
                battery_critical=status.battery_critical,
            )
        out["session"] = next((v.id for v in open_views if v.door == door), None)
        return out

    @staticmethod
    def _camera_now(camera: Camera | None) -> dict[str, Any]:
        if camera is None:
            return {"configured": False, "live": False}
        health = camera.health()
        return {
            "configured": True,
            "live": health.live,
            "state": health.state.value,
            "last_picture_age_s": health.last_packet_age_s,
            "fps": health.fps,
            "reconnects": health.reconnects,
        }

    def waiting(self, session_id: str) -> dict[str, Any]:
        view = self.service.view(session_id)
        if view is None:
            raise MediaUnknown(f"no session {session_id}")
        return _view_json(view)

    # -- what happened -------------------------------------------------------------------------

    async def history(self, filters: Filters, days: int = 28) -> dict[str, Any]:
        def read(conn: sqlite3.Connection) -> tuple[list[LogEntry], dict[int, bytes], Any]:
            report = verify_log(conn)
            start = max(0, audit_log.tree_size(conn) - HISTORY_ENTRIES)
            entries = [
                LogEntry(s.entry.index, s.entry.time_ms, s.entry.kind, s.entry.body, s.sealed)
                for s in audit_log.iter_entries(conn, start)
            ]
            index = {
                int(i): bytes(h)
                for i, h in conn.execute("SELECT entry_index, sha256 FROM clip").fetchall()
            }
            return entries, index, report

        entries, index, report = await self.store.read(read)
        bad_from = None if report.ok else (report.first_bad_index or 0)
        checks: dict[int, ClipCheck] = {}
        for entry in entries:
            if entry.kind == "clip.recorded":
                path = self._media_path(entry.body.get("path"))
                digest = None if path is None else await asyncio.to_thread(self._file_hash, path)
                recorded = entry.body.get("sha256")
                indexed = index.get(entry.index, b"").hex() == recorded
                checks[entry.index] = ClipCheck(digest, indexed)
        everything = visit_cards(entries, bad_from=bad_from, clips=checks)
        shown = [c for c in everything if filters.keep(c)]
        today = dt.datetime.now(self.settings.zone).date()
        return {
            "visits": [c.to_json() for c in shown],
            "per_day": visits_per_day(shown, self.settings.zone, today, days),
            "log": {
                "ok": report.ok,
                "entries": report.entries,
                "first_bad_index": report.first_bad_index,
                "problem": report.problem,
                "unattested_entries": report.unattested_entries,
            },
            "people": sorted({c.subject for c in everything if c.subject}),
            "purposes": sorted({c.purpose for c in everything if c.purpose}),
            "doors": sorted({c.door for c in everything if c.door}),
        }

    def _media_path(self, value: Any) -> Path | None:
        """The file an entry names, only if it is inside a clip directory and exists."""
        if not isinstance(value, str) or not value:
            return None
        path = Path(value).resolve()
        inside = any(path.is_relative_to(root.resolve()) for root in self.settings.clip_dirs)
        if not inside or not path.is_file():
            return None
        return path

    def _file_hash(self, path: Path) -> str | None:
        try:
            stat = path.stat()
            key = (str(path), stat.st_size, stat.st_mtime_ns)
            if key not in self._hashes:
                digest = hashlib.sha256()
                with path.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                self._hashes[key] = digest.hexdigest()
            return self._hashes[key]
        except OSError:
            return None

    async def media(self, entry_index: int) -> tuple[Path, str]:
        """The clip or snapshot an audit entry records: its file and media type."""
        stored = await self.store.entry(entry_index)
        if stored is None or stored.entry.kind not in MEDIA_TYPES:
            raise MediaUnknown(f"entry {entry_index} records no clip or snapshot")
        path = self._media_path(stored.entry.body.get("path"))
        if path is None:
            raise MediaUnknown(f"the file of entry {entry_index} is gone")
        return path, MEDIA_TYPES[stored.entry.kind]


def _enrollment_words(outcome: EnrollmentOutcome) -> str:
    return {
        EnrollmentOutcome.UNKNOWN: "this enrollment link is not known to this gateway",
        EnrollmentOutcome.EXPIRED: "this enrollment link has expired: ask for a new one",
        EnrollmentOutcome.USED: "this enrollment link was already used",
    }.get(outcome, "this enrollment link cannot be used")
