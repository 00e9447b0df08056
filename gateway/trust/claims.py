"""Strict decoding of the JSON inside Threshold tokens, and typed reading of its claims.

PASETO authenticates bytes; this module decides which bytes are acceptable JSON. Following
docs/tickets.md §2 it refuses what lenient decoders let through: duplicate keys (two parsers could
read two different claims from one signed payload), non-UTF-8 text, floats, NaN and
Infinity, strings carrying lone surrogates, nesting deeper than :data:`MAX_DEPTH`, and any
claim it does not know. Times are RFC 3339 strings with an explicit offset.

Every failure raises :class:`~gateway.trust.reasons.TicketError` with ``malformed_claims``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

from gateway.trust.reasons import Reason, TicketError

MAX_TOKEN_CHARS = 4096
MAX_DEPTH = 4

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})"
)
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
# Names (holders, issuers) end up in logs and on screens: no control characters.
NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,128}")


def malformed(message: str) -> NoReturn:
    raise TicketError(Reason.MALFORMED_CLAIMS, message)


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            malformed(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_float(text: str) -> NoReturn:
    malformed("numbers must be integers")


def _too_deep(root: dict[str, Any]) -> bool:
    # Breadth-first over containers only: scalars never add depth.
    level: list[Any] = [root]
    depth = 1
    while level:
        children: list[Any] = []
        for node in level:
            values = node.values() if isinstance(node, dict) else node
            children.extend(v for v in values if isinstance(v, dict | list))
        if children:
            depth += 1
            if depth > MAX_DEPTH:
                return True
        level = children
    return False


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_object, parse_float=_no_float, parse_constant=_no_float
)
# Valid UTF-8 cannot encode a surrogate, so only a \uD800-\uDFFF escape can produce one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def decode_object(data: bytes) -> dict[str, Any]:
    """Decode a JSON object strictly (see the module docstring)."""
    try:
        text = data.decode("utf-8")
        value = _DECODER.decode(text)
    except TicketError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TicketError(Reason.MALFORMED_CLAIMS, "not a JSON object") from exc
    if not isinstance(value, dict):
        malformed("not a JSON object")
    if _too_deep(value):
        malformed(f"JSON nested deeper than {MAX_DEPTH}")
    if _SURROGATE_ESCAPE.search(text) is not None and _has_lone_surrogate(value):
        malformed("a string is not valid Unicode (lone surrogate)")
    return value


def encode_object(value: dict[str, Any]) -> bytes:
    """Compact JSON with a stable key order, so a signed payload is reproducible.

    A string that is not valid Unicode (a lone surrogate, which is what Python makes of a
    command-line argument that is not UTF-8) cannot be signed: ``malformed_claims``.
    """
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        malformed("a claim is not valid Unicode (lone surrogate)")


def parse_time(text: str) -> datetime:
    """An RFC 3339 date-time with an offset, as an aware UTC datetime."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        malformed(f"not an RFC 3339 time: {text[:40]!r}")
    offset = match.group(8)
    fraction = match.group(7)
    if fraction is not None:
        text = f"{text[:19]}.{fraction[:6].ljust(6, '0')}{offset}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        malformed(f"not an RFC 3339 time: {text[:40]!r}")
    return moment if offset == "Z" else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second (what Threshold signs)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ClaimReader:
    """Takes claims out of a decoded object by name and type; :meth:`finish` refuses leftovers.

    Booleans are not integers here, though Python thinks they are.
    """

    def __init__(self, claims: dict[str, Any], what: str) -> None:
        self._claims = dict(claims)
        self._what = what

    def _take(self, name: str, required: bool) -> Any:
        if name not in self._claims:
            if required:
                malformed(f"{self._what} lacks {name!r}")
            return None
        value = self._claims.pop(name)
        if value is None:
            # Absent and null are not the same claim; only absence means "default".
            malformed(f"{self._what}.{name} is null")
        return value

    def text(
        self,
        name: str,
        *,
        pattern: re.Pattern[str] | None = None,
        max_len: int = 128,
        required: bool = True,
    ) -> str | None:
        value = self._take(name, required)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not 0 < len(value) <= max_len:
            malformed(f"{self._what}.{name} must be a string of 1..{max_len} characters")
        if pattern is not None and pattern.fullmatch(value) is None:
            malformed(f"{self._what}.{name} has characters that are not allowed")
        return value

    def req_text(
        self, name: str, *, pattern: re.Pattern[str] | None = None, max_len: int = 128
    ) -> str:
        value = self.text(name, pattern=pattern, max_len=max_len)
        assert value is not None
        return value

    def integer(self, name: str, *, low: int, high: int, default: int | None = None) -> int:
        value = self._take(name, default is None)
        if value is None:
            assert default is not None
            return default
        if type(value) is not int or not low <= value <= high:
            malformed(f"{self._what}.{name} must be an integer in {low}..{high}")
        return value

    def time(self, name: str) -> datetime:
        return parse_time(self.req_text(name, max_len=40))

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self._take(name, default is None)
        if value is None:
            assert default is not None
            return default
        if value not in allowed:
            malformed(f"{self._what}.{name} must be one of {', '.join(allowed)}")
        return str(value)

    def text_list(
        self,
        name: str,
        *,
        pattern: re.Pattern[str] | None = None,
        max_items: int = 64,
        required: bool = True,
    ) -> tuple[str, ...] | None:
        value = self._take(name, required)
        if value is None and not required:
            return None
        if not isinstance(value, list) or len(value) > max_items:
            malformed(f"{self._what}.{name} must be a list of at most {max_items} strings")
        for item in value:
            if (
                not isinstance(item, str)
                or not 0 < len(item) <= 128
                or (pattern is not None and pattern.fullmatch(item) is None)
            ):
                malformed(f"{self._what}.{name} has an item that is not allowed")
        return tuple(value)

    def time_map(
        self, name: str, *, pattern: re.Pattern[str] | None = None, max_items: int = 64
    ) -> dict[str, datetime]:
        """A required object from names (checked like :meth:`text_list` items) to times."""
        value = self._take(name, True)
        if not isinstance(value, dict) or len(value) > max_items:
            malformed(f"{self._what}.{name} must be an object of at most {max_items} entries")
        out: dict[str, datetime] = {}
        for key, moment in value.items():
            if not 0 < len(key) <= 128 or (pattern is not None and pattern.fullmatch(key) is None):
                malformed(f"{self._what}.{name} has a name that is not allowed")
            if not isinstance(moment, str) or len(moment) > 40:
                malformed(f"{self._what}.{name} values must be RFC 3339 times")
            out[key] = parse_time(moment)
        return out

    def raw(self, name: str, *, required: bool = False) -> Any:
        return self._take(name, required)

    def nested(self, name: str, read: Callable[[ClaimReader], Any]) -> Any:
        value = self._take(name, False)
        if value is None:
            return None
        if not isinstance(value, dict):
            malformed(f"{self._what}.{name} must be an object")
        reader = ClaimReader(value, f"{self._what}.{name}")
        result = read(reader)
        reader.finish()
        return result

    def finish(self) -> None:
        if self._claims:
            names = ", ".join(sorted(repr(k) for k in self._claims))
            malformed(f"{self._what} has unknown claims: {names}")
