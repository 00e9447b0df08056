"""Audit entries, their canonical byte encoding, and the bytes the Merkle tree hashes.

Canonical encoding (version 1). An entry is the JSON object
``{"b": body, "i": index, "k": kind, "t": time_ms, "v": 1}`` serialised with keys sorted,
no whitespace, UTF-8, non-ASCII characters written raw, and only the escapes JSON requires.
Bodies are restricted so that this is exactly RFC 8785 (JCS) output, which any language can
reproduce: object keys are ASCII (``[A-Za-z0-9_.-]{1,64}``), numbers are integers with
``|n| <= 2**53 - 1`` (no floats: their text form is where encoders disagree), and strings are
valid Unicode. The index is inside the bytes, so an entry cannot be moved to another position.

Leaf bytes. ``leaf_bytes(entry, seal)`` is what the tree hashes: the canonical bytes, or,
when the log is sealed to the owner (cloud sync, docs/cloud.md), ``seal(canonical bytes)``. A
SealedBox is randomised, so the store seals once at append time and keeps the sealed bytes.

Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from store.errors import InvalidEntry

ENCODING_VERSION = 1
MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 16
MAX_SAFE_INTEGER = 2**53 - 1
_KIND = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
#: Types whose every value is valid (exactly these: a subclass goes the long way).
_FLAT = frozenset((str, bool, type(None)))

EntrySealer = Callable[[bytes], bytes]
"""Turns canonical entry bytes into the sealed bytes that are hashed and synced."""

JsonValue = None | bool | int | str | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True)
class AuditEntry:
    """One event in the audit log. ``time_ms`` is Unix time in milliseconds (UTC)."""

    index: int
    time_ms: int
    kind: str
    body: Mapping[str, JsonValue]


def check_kind(kind: str) -> None:
    """Kinds are dotted lower-case names such as ``session.granted``."""
    if not isinstance(kind, str) or _KIND.fullmatch(kind) is None or len(kind) > 64:
        raise InvalidEntry(f"entry kind {kind!r} is not a dotted lower-case name")


def _check_value(value: object, depth: int, where: str) -> None:
    if depth > MAX_DEPTH:
        raise InvalidEntry(f"entry body nests deeper than {MAX_DEPTH} at {where}")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise InvalidEntry(f"integer at {where} is outside +/-(2**53 - 1)")
        return
    # Every append checks its body: a string, null or boolean one level down is accepted
    # here without a call and without formatting its path (only an error needs the path).
    flat = depth < MAX_DEPTH
    if isinstance(value, list | tuple):
        for position, item in enumerate(value):
            if not (flat and type(item) in _FLAT):
                _check_value(item, depth + 1, f"{where}[{position}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or _KEY.fullmatch(key) is None:
                raise InvalidEntry(f"object key {key!r} at {where} is not [A-Za-z0-9_.-]{{1,64}}")
            if not (flat and type(item) in _FLAT):
                _check_value(item, depth + 1, f"{where}.{key}")
        return
    raise InvalidEntry(
        f"value at {where} has type {type(value).__name__}; floats and "
        "other types have no canonical form here"
    )


def _dumps(value: object) -> bytes:
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (UnicodeEncodeError, ValueError) as exc:
        raise InvalidEntry(f"entry cannot be encoded canonically: {exc}") from None


def canonical_body(body: Mapping[str, JsonValue]) -> bytes:
    """The canonical bytes of a body alone (what the store keeps in its ``body`` column)."""
    if not isinstance(body, Mapping):
        raise InvalidEntry("an entry body is a JSON object")
    _check_value(body, 1, "body")
    encoded = _dumps(body)
    if len(encoded) > MAX_BODY_BYTES:
        raise InvalidEntry(f"entry body is {len(encoded)} bytes; the limit is {MAX_BODY_BYTES}")
    return encoded


def canonical_bytes(entry: AuditEntry) -> bytes:
    """The canonical encoding of ``entry`` (see the module docstring)."""
    return encode(entry)[1]


def encode(entry: AuditEntry) -> tuple[bytes, bytes]:
    """(the canonical body, the canonical entry bytes), the body checked and serialised once.

    The entry's bytes are put together around the body's rather than serialised again: the
    other fields are a checked kind (a dotted lower-case name: nothing JSON escapes) and two
    integers, and the keys ``b i k t v`` are already in sorted order, so this is exactly what
    ``json.dumps`` of the whole object with sorted keys gives (a test checks)."""
    check_kind(entry.kind)
    for name, number in (("index", entry.index), ("time_ms", entry.time_ms)):
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidEntry(f"entry {name} must be an integer")
        if not 0 <= number <= MAX_SAFE_INTEGER:
            raise InvalidEntry(f"entry {name} {number} is outside 0..2**53 - 1")
    body = canonical_body(entry.body)
    return body, b'{"b":%b,"i":%d,"k":"%b","t":%d,"v":%d}' % (
        body,
        entry.index,
        entry.kind.encode("ascii"),
        entry.time_ms,
        ENCODING_VERSION,
    )


def leaf_bytes(entry: AuditEntry, seal: EntrySealer | None = None) -> bytes:
    """The bytes the Merkle tree hashes for ``entry``: canonical, or sealed when sealing."""
    encoded = canonical_bytes(entry)
    return encoded if seal is None else seal(encoded)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidEntry(f"duplicate key {key!r} in entry bytes")
        result[key] = value
    return result


def _no_float(text: str) -> int:
    raise InvalidEntry(f"number {text} in entry bytes is not an integer")


def decode_entry(data: bytes) -> AuditEntry:
    """Parse canonical entry bytes; anything that would not re-encode identically is refused."""
    try:
        parsed = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    # ValueError, not only JSONDecodeError: a number past int()'s digit limit raises a plain
    # ValueError, and leaves come from outside (the relay, a receipt, the disk).
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidEntry(f"entry bytes are not JSON: {exc}") from None
    if not isinstance(parsed, dict) or set(parsed) != {"b", "i", "k", "t", "v"}:
        raise InvalidEntry("entry bytes do not hold exactly the fields b, i, k, t, v")
    if parsed["v"] != ENCODING_VERSION or isinstance(parsed["v"], bool):
        raise InvalidEntry(f"entry encoding version {parsed['v']!r} is not {ENCODING_VERSION}")
    if not isinstance(parsed["k"], str) or not isinstance(parsed["b"], dict):
        raise InvalidEntry("entry kind must be a string and body an object")
    entry = AuditEntry(index=parsed["i"], time_ms=parsed["t"], kind=parsed["k"], body=parsed["b"])
    if canonical_bytes(entry) != data:
        raise InvalidEntry("entry bytes are not in canonical form")
    return entry
