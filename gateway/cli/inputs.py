"""Reading the CLI's inputs: key files, base64url public keys, RFC 3339 times, token arguments.

Every problem becomes a :class:`~gateway.errors.UsageError` (exit 2, one line), never a
traceback. Secret key files hold one line of base64url: the 32-byte Ed25519 seed (what
``threshold keys new`` writes) or libsodium's 64-byte seed || public key.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.errors import UsageError
from gateway.trust.claims import parse_time
from gateway.trust.keys import secret_key_from_seed
from gateway.trust.paseto import PasetoError, b64decode, b64encode
from gateway.trust.reasons import TicketError
from groundwork.files import write_file

MAX_KEY_FILE = 256
MAX_TOKEN_FILE = 65536


def read_secret_key(path: str) -> bytes:
    """A 64-byte secret key from a key file."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("ascii").strip()
        key = b64decode(text)
    except (UnicodeDecodeError, PasetoError) as exc:
        raise UsageError(f"{path} is not a key file (base64url text)") from exc
    if len(key) == 32:
        return secret_key_from_seed(key)
    if len(key) == 64 and secret_key_from_seed(key[:32]) == key:
        return key
    raise UsageError(f"{path} does not hold an Ed25519 secret key")


def write_secret_key(path: str, secret_key: bytes) -> None:
    """Write the seed as base64url, mode 0600, refusing to overwrite an existing file."""
    try:
        write_file(Path(path), (b64encode(secret_key[:32]) + "\n").encode("ascii"))
    except FileExistsError as exc:
        raise UsageError(f"{path} exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from exc


def public_key(text: str, what: str = "public key") -> bytes:
    try:
        key = b64decode(text.strip())
    except PasetoError as exc:
        raise UsageError(f"{what} is not base64url") from exc
    if len(key) != 32:
        raise UsageError(f"{what} must be 32 bytes of base64url")
    return key


def moment(text: str | None, what: str) -> datetime:
    """An RFC 3339 time, or now when ``text`` is None."""
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return parse_time(text)
    except TicketError as exc:
        raise UsageError(f"{what}: {exc.message}") from exc


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"unknown time zone {name!r}") from exc


def token(text: str) -> str:
    """A token given inline, or ``@FILE`` to read it from a file."""
    if text.startswith("@"):
        try:
            return Path(text[1:]).read_text(encoding="ascii")[:MAX_TOKEN_FILE].strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read token file {text[1:]}") from exc
    return text.strip()
