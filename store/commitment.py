"""Plaintext commitments: what ties a sealed entry's readable copy to the leaf that is signed.

docs/audit-log.md, "What is shown is what is signed". A sealed leaf hides the entry from the
relay, but the store also keeps the entry in plain columns (``time_ms``, ``kind``, ``body``)
for the owner's tools. Leaf format 2 commits to each of those fields with a key only the
gateway (and, through the seal, the owner) holds, so the gateway's own verifier checks every
readable row against the signed tree without the owner's secret key:

* the gateway keeps one 32-byte commitment key ``K`` (a mode-0600 file beside the database);
* entry ``i`` gets its own key ``k_i = HMAC-SHA256(K, "threshold-entry-key/v1" || u64be(i))``;
* each field gets a 16-byte tag ``HMAC-SHA256(k_i, label || 0x00 || field bytes)[:16]`` for
  the labels ``time_ms`` (decimal), ``kind`` and ``body`` (the canonical body, UTF-8);
* the sealed payload is ``0x02 || k_i || canonical entry bytes`` (so the owner, opening it,
  can check the tags too), and the leaf is ``0x02 || tag_time || tag_kind || tag_body ||
  sealed box``.

The relay sees tags under a key it never learns (a PRF's output): nothing about the entry.
The index is bound through ``k_i``; a verifier with ``K`` names the exact field that was
edited.

Leaf format 3 is format 2 with a **visit tag** after the field tags, for the entries of an
access session (docs/api.md, "Receipts"): ``0x03 || tag_time || tag_kind || tag_body ||
visit_tag || sealed box``, where ``visit_tag = HMAC-SHA256(v, "threshold-visit-tag/v1" ||
u64be(i))[:16]`` and ``v = SHA-256("threshold-visit/v1" || 0x0A || proof)``, ``proof`` being
the 64-byte proof of possession the visitor's phone sent to open the door. Only the phone and
the gateway know ``proof``, so only the phone can recompute the tag and find its own visit
in the log; to anyone else the tag is 16 random-looking bytes, different for every entry.
The field tags and the sealed payload are exactly format 2's.

Leaves say which form they have, so a tampered ``sealed`` column cannot change how a row is
checked: a plain leaf is the canonical JSON (``{"b":`` ... ``,"v":1}``); a format-1 sealed
leaf is a bare sealed box of ``2^k + 48`` bytes; a format-2 leaf is ``2^k + 97`` bytes
starting with 0x02, a format-3 leaf ``2^k + 113`` bytes starting with 0x03 (no two of the
lengths ever coincide: they differ by less than 512).

Pure: no I/O.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from store.errors import InvalidEntry

KEY_BYTES = 32
TAG_BYTES = 16
FORMAT_2 = 0x02
FORMAT_3 = 0x03
VISIT_TAG_BYTES = 16
_VISIT_LABEL = b"threshold-visit/v1\n"
_VISIT_TAG_LABEL = b"threshold-visit-tag/v1"
SEAL_OVERHEAD = 48
TAGS_BYTES = 3 * TAG_BYTES
_HEADER = 1 + TAGS_BYTES
_ENTRY_KEY_LABEL = b"threshold-entry-key/v1"
_KEY_ID_LABEL = b"threshold-commitment-key-id/v1"
_U64 = struct.Struct(">Q")
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_KIND = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_PLAIN_HEAD = b'{"b":'
_PLAIN_TAIL = b',"v":1}'
FIELDS = ("time_ms", "kind", "body")


class LeafForm(enum.Enum):
    """How a leaf holds its entry."""

    PLAIN = "plain"
    SEALED_V1 = "sealed_v1"
    SEALED_V2 = "sealed_v2"
    SEALED_V3 = "sealed_v3"

    @property
    def committed(self) -> bool:
        """Carries the field tags (formats 2 and 3)."""
        return self in (LeafForm.SEALED_V2, LeafForm.SEALED_V3)


def _power_of_two(n: int) -> bool:
    return n >= 512 and n & (n - 1) == 0


def leaf_form(leaf: bytes) -> LeafForm | None:
    """The form of ``leaf`` read from its own bytes, or None when it is none of them."""
    if leaf.startswith(_PLAIN_HEAD) and leaf.endswith(_PLAIN_TAIL):
        return LeafForm.PLAIN
    if leaf[:1] == bytes([FORMAT_2]) and _power_of_two(len(leaf) - _HEADER - SEAL_OVERHEAD):
        return LeafForm.SEALED_V2
    if leaf[:1] == bytes([FORMAT_3]) and _power_of_two(
        len(leaf) - _HEADER - VISIT_TAG_BYTES - SEAL_OVERHEAD
    ):
        return LeafForm.SEALED_V3
    if _power_of_two(len(leaf) - SEAL_OVERHEAD):
        return LeafForm.SEALED_V1
    return None


def canonical_from_columns(index: int, time_ms: int, kind: str, body_text: str) -> bytes:
    """The canonical entry bytes (store.entry) rebuilt from the stored columns, without
    parsing the body: ``kind`` holds no quote, so the split into fields is unique and equal
    bytes mean equal fields (docs/audit-log.md explains why)."""
    return f'{{"b":{body_text},"i":{index},"k":"{kind}","t":{time_ms},"v":1}}'.encode()


def columns_well_formed(index: object, time_ms: object, kind: object, body: object) -> str | None:
    """The first column that cannot be part of any entry, or None."""
    if isinstance(time_ms, bool) or not isinstance(time_ms, int) or time_ms < 0:
        return "time_ms"
    if not isinstance(kind, str) or len(kind) > 64 or _KIND.fullmatch(kind) is None:
        return "kind"
    if not isinstance(body, str) or not body.startswith("{"):
        return "body"
    if isinstance(index, bool) or not isinstance(index, int):
        return "index"
    return None


@dataclass(frozen=True)
class CommitmentKey:
    """The gateway's commitment key ``K``."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise InvalidEntry(f"a commitment key is {KEY_BYTES} bytes, not {len(self.secret)}")

    @property
    def key_id(self) -> bytes:
        """8 bytes naming the key (kept in the database, so a wrong key file is caught)."""
        return hashlib.sha256(_KEY_ID_LABEL + b"\n" + self.secret).digest()[:8]

    def entry_key(self, index: int) -> bytes:
        return hmac.digest(self.secret, _ENTRY_KEY_LABEL + _U64.pack(index), "sha256")


def field_tag(entry_key: bytes, label: str, value: bytes) -> bytes:
    return hmac.digest(entry_key, label.encode() + b"\x00" + value, "sha256")[:TAG_BYTES]


def tags(entry_key: bytes, time_ms: int, kind: str, body_text: str) -> bytes:
    """The three field tags, in the order time_ms, kind, body."""
    return (
        field_tag(entry_key, "time_ms", str(time_ms).encode())
        + field_tag(entry_key, "kind", kind.encode())
        + field_tag(entry_key, "body", body_text.encode())
    )


EntryTagger = Callable[[int, int, str, str], tuple[bytes, bytes]]


@functools.lru_cache(maxsize=4)
def entry_tagger(key: CommitmentKey) -> EntryTagger:
    """``tag(index, time_ms, kind, body_text)``: (entry key, the three field tags), equal to
    ``key.entry_key(index)`` and :func:`tags` but computed faster (HMAC over hashlib,
    ``K``'s padded blocks hashed once per key, not once per entry; the time formatted
    straight into the hashed bytes, ``%d`` being the definition's ``str(time_ms)``). The
    appender calls it once per entry and :func:`fast_row_check` once per row; a test checks
    it against the definitions."""
    entry_inner, entry_outer = _entry_key_states(key)
    sha256 = hashlib.sha256
    pack = _U64.pack
    zeros = bytes(64 - KEY_BYTES)
    ipad, opad = _IPAD, _OPAD

    def tag(index: int, time_ms: int, kind: str, body: str) -> tuple[bytes, bytes]:
        inner = entry_inner.copy()
        inner.update(pack(index))
        outer = entry_outer.copy()
        outer.update(inner.digest())
        entry_key = outer.digest()
        padded = entry_key + zeros
        i_key, o_key = padded.translate(ipad), padded.translate(opad)
        return entry_key, (
            sha256(o_key + sha256(b"%btime_ms\x00%d" % (i_key, time_ms)).digest()).digest()[
                :TAG_BYTES
            ]
            + sha256(o_key + sha256(i_key + b"kind\x00" + kind.encode()).digest()).digest()[
                :TAG_BYTES
            ]
            + sha256(o_key + sha256(i_key + b"body\x00" + body.encode()).digest()).digest()[
                :TAG_BYTES
            ]
        )

    return tag


def _entry_key_states(key: CommitmentKey) -> tuple[Any, Any]:
    """The HMAC-SHA256 inner and outer states of ``K`` after its padded block (and, inside,
    the entry key's label): each entry's key continues from copies of them."""
    block = key.secret.ljust(64, b"\x00")
    return (
        hashlib.sha256(block.translate(_IPAD) + _ENTRY_KEY_LABEL),
        hashlib.sha256(block.translate(_OPAD)),
    )


def sealed_payload(entry_key: bytes, canonical: bytes) -> bytes:
    """What is sealed to the owner in format 2."""
    return bytes([FORMAT_2]) + entry_key + canonical


def format2_leaf(field_tags: bytes, sealed_box: bytes) -> bytes:
    return bytes([FORMAT_2]) + field_tags + sealed_box


def visit_secret(proof: bytes) -> bytes:
    """``v``: what the visitor's phone and the gateway both derive from the phone's proof."""
    return hashlib.sha256(_VISIT_LABEL + proof).digest()


def visit_tag(secret: bytes, index: int) -> bytes:
    """The visit tag of entry ``index`` of the visit whose secret is ``secret``."""
    return hmac.digest(secret, _VISIT_TAG_LABEL + _U64.pack(index), "sha256")[:VISIT_TAG_BYTES]


def format3_leaf(field_tags: bytes, tag: bytes, sealed_box: bytes) -> bytes:
    if len(tag) != VISIT_TAG_BYTES:
        raise InvalidEntry(f"a visit tag is {VISIT_TAG_BYTES} bytes")
    return bytes([FORMAT_3]) + field_tags + tag + sealed_box


def leaf_tags(leaf: bytes) -> bytes:
    return leaf[1:_HEADER]


def leaf_visit_tag(leaf: bytes) -> bytes | None:
    """The visit tag of a format-3 leaf; None for any other form."""
    if leaf_form(leaf) is not LeafForm.SEALED_V3:
        return None
    return leaf[_HEADER : _HEADER + VISIT_TAG_BYTES]


def leaf_sealed_box(leaf: bytes) -> bytes:
    """The sealed box inside a sealed leaf of any format."""
    form = leaf_form(leaf)
    if form is LeafForm.SEALED_V2:
        return leaf[_HEADER:]
    if form is LeafForm.SEALED_V3:
        return leaf[_HEADER + VISIT_TAG_BYTES :]
    return leaf


def open_payload(payload: bytes) -> tuple[bytes | None, bytes]:
    """(the entry key, the canonical bytes) of an opened seal; no key for format 1."""
    if payload[:1] == bytes([FORMAT_2]):
        if len(payload) < 1 + KEY_BYTES:
            raise InvalidEntry("a format-2 sealed payload is too short")
        return payload[1 : 1 + KEY_BYTES], payload[1 + KEY_BYTES :]
    return None, payload


def bad_field(expected_tags: bytes, entry_key: bytes, time_ms: int, kind: str, body: str) -> str:
    """The first field whose tag differs, or "" when all three agree."""
    found = tags(entry_key, time_ms, kind, body)
    for position, name in enumerate(FIELDS):
        part = slice(position * TAG_BYTES, (position + 1) * TAG_BYTES)
        if not hmac.compare_digest(found[part], expected_tags[part]):
            return name
    return ""


class RowStatus(enum.Enum):
    """What the check of one stored row found."""

    VERIFIED = "verified"
    #: A stored column says something the signed leaf does not.
    MISMATCH = "mismatch"
    #: Sealed in format 1 (before commitments), or no commitment key: only the owner's key
    #: can check it.
    UNCHECKABLE = "uncheckable"


@dataclass(frozen=True)
class RowVerdict:
    status: RowStatus
    field: str | None = None
    detail: str = ""

    @property
    def verified(self) -> bool:
        return self.status is RowStatus.VERIFIED


VERIFIED = RowVerdict(RowStatus.VERIFIED)


def _plain_bad_field(leaf: bytes, index: int, time_ms: int, kind: str, body: str) -> str:
    # Only on the slow path (something differs): parse the leaf to name the field.
    from store.entry import canonical_body, decode_entry

    try:
        entry = decode_entry(leaf)
    except InvalidEntry:
        return "leaf_bytes"
    if entry.index != index:
        return "index"
    if entry.time_ms != time_ms:
        return "time_ms"
    if entry.kind != kind:
        return "kind"
    if canonical_body(entry.body).decode("utf-8") != body:
        return "body"
    return "leaf_bytes"


RowCheck = Callable[[int, object, object, object, object, bytes], bool]


def fast_row_check(key: CommitmentKey) -> RowCheck:
    """``check(index, time_ms, kind, body, sealed, leaf)``: True only when :func:`check_row`
    would say VERIFIED for a committed (format 2 or 3) row, computed with as little Python as
    possible (one pass of ``audit verify`` calls it a million times). False means "not on the
    fast path": the caller asks :func:`check_row`, which names the field. Equivalent for
    every row the gateway can have written: equal tags mean the columns are the values the
    gateway committed, which passed the same well-formedness rules when appended."""
    # The tags come from :func:`entry_tagger`: HMAC-SHA256 (RFC 2104) written out over
    # hashlib, the entry key's states after K's padded block computed once per key. OpenSSL
    # 3's one-shot HMAC (hmac.digest) fetches the digest again on every call and costs twice
    # as much; a test checks both agree on random inputs.
    tagger = entry_tagger(key)
    equal = hmac.compare_digest
    v2_extra = _HEADER + SEAL_OVERHEAD
    v3_extra = v2_extra + VISIT_TAG_BYTES

    def check(
        index: int, time_ms: object, kind: object, body: object, sealed: object, leaf: bytes
    ) -> bool:
        if type(time_ms) is not int or type(kind) is not str or type(body) is not str:
            return False
        if sealed != 1 or time_ms < 0 or not leaf:
            return False
        head = leaf[0]
        n = len(leaf) - (v2_extra if head == FORMAT_2 else v3_extra if head == FORMAT_3 else 0)
        if head not in (FORMAT_2, FORMAT_3) or n < 512 or n & (n - 1):
            return False
        return equal(tagger(index, time_ms, kind, body)[1], leaf[1:_HEADER])

    return check


def check_row(
    index: int,
    time_ms: object,
    kind: object,
    body: object,
    sealed: object,
    leaf: bytes,
    key: CommitmentKey | None,
) -> RowVerdict:
    """Does the readable copy of entry ``index`` say what its leaf commits to?"""
    form = leaf_form(leaf)
    if form is None:
        return RowVerdict(RowStatus.MISMATCH, "leaf_bytes", "the leaf is in no known form")
    if bool(sealed) != (form is not LeafForm.PLAIN):
        return RowVerdict(RowStatus.MISMATCH, "sealed", f"the leaf is {form.value}")
    bad = columns_well_formed(index, time_ms, kind, body)
    if bad is not None or not (
        isinstance(time_ms, int) and isinstance(kind, str) and isinstance(body, str)
    ):
        return RowVerdict(RowStatus.MISMATCH, bad, "not a valid value")
    if form is LeafForm.PLAIN:
        if canonical_from_columns(index, time_ms, kind, body) == leaf:
            return VERIFIED
        field = _plain_bad_field(leaf, index, time_ms, kind, body)
        return RowVerdict(RowStatus.MISMATCH, field, "differs from the hashed bytes")
    if form is LeafForm.SEALED_V1:
        return RowVerdict(
            RowStatus.UNCHECKABLE, None, "sealed before plaintext commitments (format 1)"
        )
    if key is None:
        return RowVerdict(RowStatus.UNCHECKABLE, None, "no commitment key to check it with")
    field = bad_field(leaf_tags(leaf), key.entry_key(index), time_ms, kind, body)
    if field:
        return RowVerdict(RowStatus.MISMATCH, field, "differs from the signed leaf's commitment")
    return VERIFIED
