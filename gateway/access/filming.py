"""Filming every entry: the home's cameras as the access runner's witness (session
invariant 6; docs/camera.md, "In the gateway: filming every entry").

:class:`EntryCameras` implements :class:`gateway.access.service.EntryWitness` over every
camera of the home, each an :class:`EntryCamera` (a :class:`video.camera.Camera`, the doors
it watches, and the store). A door is filmed by every camera that watches it; a ticket that
requires the camera needs every one of them live (a door no camera watches has none). Per
session, each camera that watches its door does this:

* at the grant, before the unlock: the clip starts from the pre-roll (``start_clip`` returns
  at once; the writer runs on its own thread) and the grant's picture is taken (its packets,
  at once); it is decoded only once the unlock is over (the lock reported it, or else the
  door opened or the session ended), so that four cameras' decoding never competes with the
  unlock;
* when the door sensor first reports open: a snapshot;
* when the session ends: a snapshot, then ``finish_clip`` (the post-roll) in the
  background; the result becomes a ``clip.recorded`` entry and a row of the clips index in
  ONE store transaction, or a ``clip.missing`` entry with the reason (the camera was down).

Nothing here is awaited on the access path except ``start_clip``, which does no I/O wait: a
snapshot or clip that fails is recorded (``snapshot.failed``, ``clip.missing``) and never
holds the door. The decisions (deny without a live camera, relock early on a stall, what
motion means) live in the pure modules :mod:`gateway.access.policy`, :mod:`gateway.access.session`
and :mod:`gateway.access.scene`.

A stall (a camera stops delivering frames while it was live) calls
:meth:`gateway.access.service.AccessService.camera_stalled` with the doors it watches: each
of them that is open relocks early, and the session writes ``camera.stalled`` and
``alarm.raised`` in the same batch as its relock decision. A stall with no session open is
still recorded (``camera.stalled``, ``sessions_relocked = 0``). Retention deletions become
``clip.deleted`` entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.access.scene import MotionReading, grant_scene, relock_scene
from gateway.access.session import AuditValue
from groundwork.files import write_file
from store.db import Store
from store.errors import StoreError
from store.transaction import StoreTransaction
from video.camera import Camera, CameraStall, Still
from video.clip import ClipRecording, ClipResult
from video.errors import CameraError
from video.retention import ClipDeleted

log = logging.getLogger("threshold.filming")

#: How long shutdown waits for each camera reader thread (a frozen camera can block a read
#: for twice the read timeout; the thread is a daemon and ends on its own after that).
CAMERA_STOP_BUDGET_S = 1.0


StallHandler = Callable[[Collection[str] | None], int]


class EntryCamera:
    """One camera's part in the access sessions of the doors it watches; see the module
    docstring."""

    def __init__(
        self,
        camera: Camera,
        store: Store,
        *,
        doors: Collection[str] | None = None,
        on_stall: StallHandler = lambda doors: 0,
        on_recorded: Callable[[], None] = lambda: None,
    ) -> None:
        self.camera = camera
        self.store = store
        #: The camera's name (audit entries, the live view's ``?camera=``).
        self.name = camera.config.name
        #: The doors it watches; None: every door.
        self.doors = None if doors is None else frozenset(doors)
        #: Relocks the open doors among those given (None: all); returns how many
        #: (AccessService.camera_stalled).
        self.on_stall = on_stall
        #: Called after each entry this class writes (AccessService.notify_changed).
        self.on_recorded = on_recorded
        #: Called with ``(door, jpeg)`` after each visit snapshot is saved (Home Assistant's
        #: image entity); must return at once.
        self.on_snapshot: Callable[[str, bytes], None] = lambda door, jpeg: None
        self._recordings: dict[str, ClipRecording] = {}
        self._finishing: set[ClipRecording] = set()
        self._live_at_grant: dict[str, bool] = {}
        # The grant's picture, taken at the grant and decoded once the unlock is over.
        self._grant_stills: dict[str, Still | CameraError] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.entries_written = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.camera.add_stall_listener(self._stalled)
        self.camera.add_deletion_listener(self._deleted_from_thread)
        await self.camera.start()

    def watches(self, door: str) -> bool:
        return self.doors is None or door in self.doors

    def live(self) -> bool:
        # Fresh packets AND a keyframe in hand: just after connecting, packets flow before
        # the first keyframe, and nothing of them can be decoded, filmed or shown.
        return self.camera.live and bool(self.camera.source.latest_group())

    def reading(self) -> MotionReading:
        facts = self.camera.motion_facts()
        return MotionReading(facts.enabled, facts.moving, facts.seconds_since_motion)

    async def session_granted(self, session: str, door: str) -> None:
        self._live_at_grant[session] = self.camera.live
        self._recordings[session] = await self.camera.start_clip(session)
        try:
            self._grant_stills[session] = self.camera.capture()
        except CameraError as exc:
            self._grant_stills[session] = exc

    def door_unlocked(self, session: str, door: str) -> None:
        self._develop_grant_still(session, door)

    def door_opened(self, session: str, door: str) -> None:
        self._develop_grant_still(session, door)
        self._snapshot(session, door, "door_open")

    def session_ended(self, session: str, door: str, state: str) -> None:
        self._develop_grant_still(session, door)
        self._snapshot(session, door, "close")
        recording = self._recordings.pop(session, None)
        if recording is not None:
            self._spawn(self._finish(session, door, recording), f"clip {session}")

    # -- lifecycle -------------------------------------------------------------------------

    async def settle(self, within_s: float) -> None:
        """Wait until every snapshot and clip in flight is recorded (TimeoutError if not)."""
        async with asyncio.timeout(within_s):
            while self._tasks:
                await asyncio.wait(list(self._tasks))

    async def close(self, budget_s: float = 3.0) -> None:
        """Cut open clips short (no post-roll), record what is in flight, stop the camera.

        Call it after the access service has shut down and before the store closes.
        """
        self._closing = True
        for session, recording in list(self._recordings.items()):
            self._spawn(self._finish(session, "", recording), f"clip {session}")
        self._recordings.clear()
        for session in list(self._grant_stills):
            self._develop_grant_still(session, "")
        for recording in list(self._finishing):
            recording.cut_short()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=budget_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self.camera.close(stop_timeout_s=CAMERA_STOP_BUDGET_S)

    # -- the work, off the access path ----------------------------------------------------

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, kind: str, body: Mapping[str, AuditValue]) -> None:
        try:
            await self.store.append(kind, dict(body))
            self.entries_written += 1
        except StoreError as exc:
            log.error("audit entry %s not recorded (%s)", kind, exc.code)
        finally:
            self.on_recorded()

    async def _record_deletion(self, body: dict[str, AuditValue]) -> None:
        # The entry and the clip index row go together: the index never names a file that
        # retention removed, and the entry names the clip.recorded entry it ends.
        def write(tx: StoreTransaction) -> None:
            recorded = tx.state.forget_clip(str(body["path"]))
            tx.append("clip.deleted", {**body, "recorded_entry": recorded})

        try:
            await self.store.transact(write)
            self.entries_written += 1
        except StoreError as exc:
            log.error("audit entry clip.deleted not recorded (%s)", exc.code)
        finally:
            self.on_recorded()

    async def _finish(self, session: str, door: str, recording: ClipRecording) -> None:
        self._finishing.add(recording)
        if self._closing:
            recording.cut_short()
        try:
            result = await self.camera.finish_clip(recording)
        except CameraError as exc:
            await self._record(
                "clip.missing",
                {
                    "session": session,
                    "door": door or None,
                    "code": exc.code,
                    "reason": exc.message,
                    "camera_live_at_grant": self._live_at_grant.pop(session, None),
                },
            )
            return
        finally:
            self._finishing.discard(recording)
        live_at_grant = self._live_at_grant.pop(session, None)
        try:
            await self.store.transact(lambda tx: _clip_recorded(tx, door, live_at_grant, result))
            self.entries_written += 1
        except StoreError as exc:
            log.error("clip %s not recorded in the log (%s)", result.path.name, exc.code)
        finally:
            self.on_recorded()

    def _snapshot(self, session: str, door: str, moment: str) -> None:
        try:
            still: Still | CameraError = self.camera.capture()
        except CameraError as exc:
            still = exc
        self._spawn(self._take_snapshot(session, door, moment, still), f"snapshot {moment}")

    def _develop_grant_still(self, session: str, door: str) -> None:
        still = self._grant_stills.pop(session, None)
        if still is not None:
            self._spawn(self._take_snapshot(session, door, "grant", still), "snapshot grant")

    async def _take_snapshot(
        self, session: str, door: str, moment: str, still: Still | CameraError
    ) -> None:
        base: dict[str, AuditValue] = {"session": session, "door": door, "moment": moment}
        try:
            if isinstance(still, CameraError):
                raise still
            jpeg = await self.camera.develop(still)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            path = self.camera.config.clip_dir / f"{stamp}Z-{_safe(session)}-{moment}.jpg"
            await asyncio.to_thread(write_file, path, jpeg)
        except (CameraError, OSError) as exc:
            code = exc.code if isinstance(exc, CameraError) else "snapshot_write_failed"
            await self._record("snapshot.failed", {**base, "code": code, "reason": str(exc)})
            return
        await self._record(
            "snapshot.saved",
            {
                **base,
                "path": str(path),
                "sha256": hashlib.sha256(jpeg).hexdigest(),
                "size_bytes": len(jpeg),
            },
        )
        try:
            self.on_snapshot(door, jpeg)
        except Exception:
            log.exception("snapshot listener failed")

    # -- camera callbacks ------------------------------------------------------------------

    def _stalled(self, stall: CameraStall) -> None:
        # On the event loop. The relock is decided and recorded by each open session.
        relocked = self.on_stall(self.doors)
        if relocked == 0:
            age = stall.health.last_packet_age_s
            self._spawn(
                self._record(
                    "camera.stalled",
                    {
                        "sessions_relocked": 0,
                        "at": stall.at,
                        "last_packet_age_ms": None if age is None else round(age * 1000),
                        "camera": self.name or None,
                    },
                ),
                "camera stalled",
            )

    def _deleted_from_thread(self, event: ClipDeleted) -> None:
        loop = self._loop
        if loop is None:
            return
        body: dict[str, AuditValue] = {
            "path": str(event.path),
            "media": event.media,
            "size_bytes": event.size_bytes,
            "reason": event.reason,
        }

        def record() -> None:
            self._spawn(self._record_deletion(body), "clip deleted")

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(record)


def _clip_recorded(
    tx: StoreTransaction, door: str, live_at_grant: bool | None, result: ClipResult
) -> None:
    body = _integers_only(result.audit_fields())
    body["door"] = door or None
    body["camera_live_at_grant"] = live_at_grant
    stored = tx.append("clip.recorded", body)
    # Every file of the clip is in the index (several parts when the picture size changed).
    for part in result.parts or ():
        tx.state.add_clip(
            str(part.path), bytes.fromhex(part.sha256), stored.entry.index, part.size_bytes
        )
    if not result.parts:
        tx.state.add_clip(
            str(result.path), bytes.fromhex(result.sha256), stored.entry.index, result.size_bytes
        )


def _integers_only(fields: Mapping[str, object]) -> dict[str, Any]:
    """The log takes no floats (their text form is where encoders disagree): ``x_s`` seconds
    become ``x_ms`` integer milliseconds."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, float):
            name = key[:-2] + "_ms" if key.endswith("_s") else key + "_ms"
            out[name] = round(value * 1000)
        else:
            out[key] = value
    return out


def _safe(session: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in session)[:64] or "session"


class EntryCameras:
    """Every camera of the home as the access runner's witness (EntryWitness); see the module
    docstring. The grant's and relock's scene combine the motion of the door's cameras."""

    def __init__(self, cameras: Sequence[EntryCamera]) -> None:
        if not cameras:
            raise ValueError("at least one camera")
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must differ: {names}")
        self.cameras = tuple(cameras)

    @property
    def camera(self) -> Camera:
        """The first camera (the only one, in a home with one)."""
        return self.cameras[0].camera

    def by_name(self, name: str) -> EntryCamera | None:
        return next((c for c in self.cameras if c.name == name), None)

    def watching(self, door: str) -> tuple[EntryCamera, ...]:
        return tuple(c for c in self.cameras if c.watches(door))

    @property
    def on_stall(self) -> StallHandler:
        return self.cameras[0].on_stall

    @on_stall.setter
    def on_stall(self, handler: StallHandler) -> None:
        for camera in self.cameras:
            camera.on_stall = handler

    @property
    def on_recorded(self) -> Callable[[], None]:
        return self.cameras[0].on_recorded

    @on_recorded.setter
    def on_recorded(self, handler: Callable[[], None]) -> None:
        for camera in self.cameras:
            camera.on_recorded = handler

    @property
    def on_snapshot(self) -> Callable[[str, bytes], None]:
        return self.cameras[0].on_snapshot

    @on_snapshot.setter
    def on_snapshot(self, handler: Callable[[str, bytes], None]) -> None:
        # A door several cameras watch shows the newest snapshot of any of them.
        for camera in self.cameras:
            camera.on_snapshot = handler

    @property
    def entries_written(self) -> int:
        return sum(c.entries_written for c in self.cameras)

    def all_live(self) -> bool:
        """Every camera of the home is live (Home Assistant's one camera connectivity)."""
        return all(c.live() for c in self.cameras)

    async def start(self) -> None:
        for camera in self.cameras:
            await camera.start()

    async def settle(self, within_s: float) -> None:
        async with asyncio.timeout(within_s):
            for camera in self.cameras:
                await camera.settle(within_s)

    async def close(self, budget_s: float = 3.0) -> None:
        await asyncio.gather(*(c.close(budget_s) for c in self.cameras))

    # -- EntryWitness ----------------------------------------------------------------------

    def live(self, door: str) -> bool:
        watching = self.watching(door)
        return bool(watching) and all(c.live() for c in watching)

    def _reading(self, door: str) -> MotionReading | None:
        readings = [c.reading() for c in self.watching(door)]
        enabled = [r for r in readings if r.enabled]
        if not enabled:
            return readings[0] if readings else None
        since = [r.seconds_since_motion for r in enabled if r.seconds_since_motion is not None]
        return MotionReading(True, any(r.moving for r in enabled), min(since) if since else None)

    def grant_scene(self, door: str) -> Mapping[str, AuditValue]:
        # Whether the cameras were live is part of the grant's own (write-ahead) entry: a
        # ticket with camera = preferred, or policy.allow_without_camera, goes on without.
        names = ",".join(c.name for c in self.watching(door))
        scene: dict[str, AuditValue] = {"camera_live": self.live(door)}
        if len(self.cameras) > 1:
            scene["cameras"] = names or None
        return {**scene, **grant_scene(self._reading(door))}

    def relock_scene(self, door: str) -> Mapping[str, AuditValue]:
        return relock_scene(self._reading(door))

    async def session_granted(self, session: str, door: str) -> None:
        # Each camera on its own: one that cannot record must not stop the others, and once
        # any has started, the session must hear of its end (so this never raises).
        for camera in self.watching(door):
            try:
                await camera.session_granted(session, door)
            except Exception:
                log.exception(
                    "session %s: camera %s could not start recording", session, camera.name
                )

    def door_unlocked(self, session: str, door: str) -> None:
        for camera in self.watching(door):
            camera.door_unlocked(session, door)

    def door_opened(self, session: str, door: str) -> None:
        for camera in self.watching(door):
            camera.door_opened(session, door)

    def session_ended(self, session: str, door: str, state: str) -> None:
        for camera in self.watching(door):
            camera.session_ended(session, door, state)
