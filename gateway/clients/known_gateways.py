"""Which TLS key each gateway has, across runs of the owner and courier clients.

``threshold owner`` and ``threshold courier`` always authenticate the gateway, in this order:

1. ``--pin-fingerprint``: the pin ``threshold init`` printed (or the owner's app shows). It is
   used as given and the file is not consulted or written.
2. the known-gateways file (``--known-gateways``, default
   ``$XDG_CONFIG_HOME/threshold/known_gateways``, i.e. ``~/.config/threshold/known_gateways``):
   the pin recorded for the URL's ``host:port``.
3. trust on first use: a gateway never seen before is pinned to the key it presents, and
   this is said on stderr (``first contact with gw-home at ...: pinned ...``), unless a
   gateway with the same id is already known with another key, which is refused.

A changed key is refused with one line saying where the old pin is kept. The file is plain
text, one gateway a line (``# comments`` allowed)::

    <host:port> <gateway id> <SPKI SHA-256 of its TLS key, lowercase hex>

It is written with mode 0600, whole and renamed into place (never half written), and a file
that others may write is refused: whoever can edit it can redirect the owner's phone.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.clients.lan import GatewayClient, GatewayKeyMismatch, gateway_address
from gateway.errors import GatewayError
from gateway.trust.tls_pin import PinError, parse_pin

_ADDRESS = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+):[0-9]{1,5}")
_GATEWAY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
HEADER = "# threshold known gateways: <host:port> <gateway id> <SPKI SHA-256 of its TLS key>\n"


class KnownGatewaysError(GatewayError):
    code = "known_gateways"


class GatewayKeyChanged(GatewayError):
    code = "gateway_key_changed"


class PlainHttpRefused(GatewayError):
    code = "gateway_not_authenticated"


@dataclass(frozen=True, slots=True)
class KnownGateway:
    address: str
    gateway_id: str
    fingerprint: str

    def line(self) -> str:
        return f"{self.address} {self.gateway_id} {self.fingerprint}\n"


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "threshold" / "known_gateways"


def parse(text: str, source: str) -> tuple[KnownGateway, ...]:
    """The entries of a known-gateways file; any malformed line refuses the whole file."""
    entries: list[KnownGateway] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        try:
            if len(fields) != 3:
                raise PinError("expected <host:port> <gateway id> <fingerprint>")
            address, gateway_id, fingerprint = fields
            if not _ADDRESS.fullmatch(address) or not _GATEWAY_ID.fullmatch(gateway_id):
                raise PinError("expected <host:port> <gateway id> <fingerprint>")
            entries.append(KnownGateway(address, gateway_id, parse_pin(fingerprint)))
        except PinError as exc:
            raise KnownGatewaysError(f"{source}:{number}: {exc.message}") from None
    return tuple(entries)


class KnownGateways:
    """The known-gateways file: read once, rewritten whole when a gateway is added."""

    def __init__(self, path: Path, entries: tuple[KnownGateway, ...]) -> None:
        self.path = path
        self.entries = entries

    @classmethod
    def load(cls, path: Path) -> KnownGateways:
        try:
            st = path.stat()
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return cls(path, ())
        except (OSError, UnicodeDecodeError) as exc:
            raise KnownGatewaysError(f"{path}: cannot read it ({exc})") from None
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise KnownGatewaysError(
                f"{path}: others may write it (mode {stat.S_IMODE(st.st_mode):o}), so its "
                "pins cannot be trusted; run chmod 600 on it"
            )
        return cls(path, parse(text, str(path)))

    def at(self, address: str) -> KnownGateway | None:
        for entry in self.entries:
            if entry.address == address:
                return entry
        return None

    def named(self, gateway_id: str) -> tuple[KnownGateway, ...]:
        return tuple(e for e in self.entries if e.gateway_id == gateway_id)

    def add(self, entry: KnownGateway) -> None:
        """Record ``entry`` (replacing any line for its address) and save atomically."""
        kept = tuple(e for e in self.entries if e.address != entry.address)
        self.entries = (*kept, entry)
        self._save()

    def _save(self) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = directory / f".{self.path.name}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)  # a leftover tmp file keeps its old mode otherwise
                os.write(fd, (HEADER + "".join(e.line() for e in self.entries)).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise KnownGatewaysError(f"{self.path}: cannot write it ({exc.strerror})") from None


async def open_gateway(
    url: str,
    *,
    pin: str | None,
    known_path: Path,
    notice: Callable[[str], None],
    timeout_s: float | None = None,
) -> tuple[GatewayClient, dict[str, Any]]:
    """A client authenticated to the gateway at ``url`` (the order in the module docstring),
    and the gateway's ``/v1/info``. The caller closes the client."""
    if not url.startswith("https://"):
        raise PlainHttpRefused(f"{url}: the gateway cannot be authenticated over plain HTTP")
    known = None if pin is not None else KnownGateways.load(known_path)
    options: dict[str, Any] = {} if timeout_s is None else {"timeout_s": timeout_s}
    entry = known.at(gateway_address(url)) if known is not None else None
    fingerprint = entry.fingerprint if entry is not None else pin
    client = GatewayClient(url, fingerprint=fingerprint, **options)
    try:
        info = await _info(client, entry, known_path)
        if known is not None:
            _remember(known, entry, client, str(info.get("gateway_id", "")), notice)
    except BaseException:
        await client.close()
        raise
    return client, info


async def _info(
    client: GatewayClient, entry: KnownGateway | None, known_path: Path
) -> dict[str, Any]:
    try:
        return await client.info()
    except GatewayKeyMismatch as exc:
        if entry is None:
            raise
        raise GatewayKeyChanged(
            f"the gateway at {exc.address} now presents TLS key {exc.got}, not the key "
            f"{exc.expected} pinned for {entry.gateway_id} in {known_path}; if its owner "
            "re-initialised it, check the new fingerprint with them and remove that line"
        ) from None


def _remember(
    known: KnownGateways,
    entry: KnownGateway | None,
    client: GatewayClient,
    gateway_id: str,
    notice: Callable[[str], None],
) -> None:
    seen = client.key_fingerprint
    assert seen is not None  # an https client that answered has seen a key
    if entry is not None:
        if entry.gateway_id != gateway_id:
            raise GatewayKeyChanged(
                f"the gateway at {client.address} now calls itself {gateway_id!r}, not "
                f"{entry.gateway_id!r} as pinned in {known.path}"
            )
        return
    if not _GATEWAY_ID.fullmatch(gateway_id):
        raise GatewayKeyChanged(f"the server at {client.address} gives no valid gateway id")
    for other in known.named(gateway_id):
        if other.fingerprint != seen:
            raise GatewayKeyChanged(
                f"{client.address} claims to be {gateway_id} with TLS key {seen}, but "
                f"{gateway_id} is pinned at {other.address} with key {other.fingerprint} "
                f"in {known.path}; refusing an impostor"
            )
    known.add(KnownGateway(client.address, gateway_id, seen))
    notice(
        f"first contact with {gateway_id} at {client.address}: pinned its TLS key "
        f"fingerprint {seen} in {known.path}"
    )
