"""What one push says, padded to one size, and whether it is still worth sending. Pure.

A push carries a :class:`~gateway.owner.notices.Notice` in the owner's words and only what the
service worker needs to open the app on the right screen (``route``, the app's ``#`` route),
as UTF-8 JSON padded with spaces to exactly :data:`PAYLOAD_BYTES`. The RFC 8291 ciphertext
of a fixed-size plaintext has a fixed size (RFC 8188 §2: header, one record, a 16-byte tag),
so the push service learns that a push happened and when, not what kind or how long its text.
Trailing spaces are JSON whitespace: ``PushMessageData.json()`` reads the padded body as is.

Staleness (:func:`ttl_left`): a push is worth sending within the configured window of its
notice; past it, it is dropped (a stale "courier arrived" is noise), and the push service is
told to keep it no longer than what remains (RFC 8030 §5.2, the ``TTL`` header).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.owner.notices import SCREEN, Notice, NoticeKind
from gateway.push.errors import PayloadTooLarge

#: Every push's plaintext size; the largest a notice needs with room to spare, far below
#: the 4096-byte limit push services take (RFC 8030 §7.2).
PAYLOAD_BYTES = 512
#: The aes128gcm body of a PAYLOAD_BYTES plaintext (RFC 8188 §2.1): salt 16, rs 4, idlen 1,
#: the sender's key 65; one record of plaintext, the 0x02 delimiter and the 16-byte tag.
CIPHERTEXT_BYTES = 16 + 4 + 1 + 65 + PAYLOAD_BYTES + 1 + 16
TITLE = "Threshold"

#: The screens a push opens (the app's routes), beyond the live feed's default.
_ROUTE = {
    **SCREEN,
    NoticeKind.EMERGENCY_ENTRY: "live",
    NoticeKind.CAMERA_STALLED: "live",
}


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One push's content, before padding and encryption."""

    kind: str
    body: str
    #: The app's route the notification opens (``approve/<session>``, ``live``, ``now``).
    route: str
    #: Replaces an earlier notification of the same visit rather than piling up.
    tag: str
    at_ms: int

    def to_json(self) -> dict[str, object]:
        return {
            "v": 1,
            "title": TITLE,
            "kind": self.kind,
            "body": self.body,
            "route": self.route,
            "tag": self.tag,
            "at_ms": self.at_ms,
        }


def route_of(notice: Notice) -> str:
    if notice.kind is NoticeKind.APPROVAL_NEEDED and notice.session:
        return f"approve/{notice.session}"
    return _ROUTE.get(notice.kind, "now")


def message_for(notice: Notice) -> PushMessage:
    return PushMessage(
        notice.kind.value,
        notice.text,
        route_of(notice),
        notice.session or notice.kind.value,
        notice.at_ms,
    )


def _encode(message: PushMessage) -> bytes:
    return json.dumps(message.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def padded_payload(message: PushMessage, size: int = PAYLOAD_BYTES) -> bytes:
    """The message as JSON padded with spaces to exactly ``size`` bytes; a text too long is
    shortened (an ellipsis) until it fits."""
    raw = _encode(message)
    body = message.body
    while len(raw) > size and body:
        body = body[: max(0, len(body) - max(1, (len(raw) - size)))]
        short = PushMessage(
            message.kind, body.rstrip() + "…", message.route, message.tag, message.at_ms
        )
        raw = _encode(short)
    if len(raw) > size:
        raise PayloadTooLarge(f"a {message.kind} push needs {len(raw)} bytes, over {size}")
    return raw + b" " * (size - len(raw))


def ttl_left(age_s: float, window_s: int) -> int | None:
    """The TTL (whole seconds, at least 1) to give a push whose notice is ``age_s`` old, or
    None when it is past the window and must be dropped."""
    left = window_s - age_s
    if left < 1:
        return None
    return int(left)
