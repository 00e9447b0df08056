"""A device's Web Push subscription and its choice of notices, as the app sends them. Pure.

The app posts its ``PushSubscription`` (``toJSON()``: the endpoint and the keys, RFC 8291
§3: the device's P-256 key ``p256dh`` and its 16-byte ``auth`` secret) and the kinds of
notice it wants. :func:`parse_subscription` and :func:`parse_kinds` refuse anything else
with :class:`~gateway.owner.errors.BadAppRequest`: an endpoint that is not https (a push
service is reached over TLS only: RFC 8030 §8), keys of the wrong length, unknown kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.owner.errors import BadAppRequest
from gateway.owner.notices import NoticeKind
from gateway.trust.base64url import b64u_decode

MAX_ENDPOINT = 1024

#: The notices that may interrupt the owner, in the app's order, with the settings' words.
PUSH_KINDS: dict[NoticeKind, str] = {
    NoticeKind.COURIER_ARRIVED: "A courier arrived",
    NoticeKind.APPROVAL_NEEDED: "Someone waits for my approval",
    NoticeKind.EMERGENCY_ENTRY: "An emergency entry",
    NoticeKind.CAMERA_STALLED: "The camera stopped during a visit",
    NoticeKind.RELOCK_FAILED: "A door did not lock again",
    NoticeKind.DOOR_LEFT_OPEN: "A door was left open",
    NoticeKind.CLOCK_FLOOR_AHEAD: "The gateway's clock is wrong",
}
DEFAULT_KINDS: tuple[str, ...] = tuple(k.value for k in PUSH_KINDS)


@dataclass(frozen=True, slots=True)
class DeviceSubscription:
    endpoint: str
    p256dh: bytes
    auth: bytes


def _key(keys: dict[str, Any], name: str, length: int) -> bytes:
    value = keys.get(name)
    try:
        raw = b64u_decode(value.rstrip("=")) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != length or (name == "p256dh" and raw[0] != 0x04):
        raise BadAppRequest(f"subscription.keys.{name} is not a valid key")
    return raw


def parse_subscription(value: Any) -> DeviceSubscription:
    if not isinstance(value, dict):
        raise BadAppRequest("subscription must be the browser's PushSubscription as JSON")
    endpoint = value.get("endpoint")
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= MAX_ENDPOINT:
        raise BadAppRequest(f"subscription.endpoint must be a URL of at most {MAX_ENDPOINT}")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise BadAppRequest("subscription.endpoint must be an https URL")
    keys = value.get("keys")
    if not isinstance(keys, dict):
        raise BadAppRequest("subscription.keys must hold p256dh and auth")
    return DeviceSubscription(endpoint, _key(keys, "p256dh", 65), _key(keys, "auth", 16))


def parse_kinds(value: Any) -> tuple[str, ...]:
    """The kinds a device wants, in the app's order (duplicates collapse)."""
    if value is None:
        return DEFAULT_KINDS
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise BadAppRequest("kinds must be a list of notice kinds")
    unknown = sorted(set(value) - set(DEFAULT_KINDS))
    if unknown:
        raise BadAppRequest(f"{unknown[0]!r} is not a kind of notice that can be pushed")
    return tuple(k for k in DEFAULT_KINDS if k in value)
