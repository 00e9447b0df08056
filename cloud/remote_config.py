"""The ``[remote]`` table of relay.toml: the SNI front's domain, address, names and DNS.

::

    [remote]
    domain = "relay.example"          # remote names are <name>.relay.example
    listen = "0.0.0.0:443"            # the SNI front (TLS from browsers, tunnels from gateways)
    public_port = 443                 # the port gateways dial (if a proxy maps it), default
                                      # the listen port
    challenge_dns = "http://127.0.0.1:8055"   # pebble-challtestsrv's management API

    [remote.names]
    home = "<registered gateway id>"  # the operator assigns each name to one gateway

Without ``[remote]`` the relay has no SNI front and answers the tunnel and ACME routes with
``remote_not_offered``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from cloud.remote_names import NameTable, RemoteNameError
from cloud.storage import CONFIG_FILE, StorageConfigError


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    names: NameTable
    host: str
    port: int
    public_port: int | None
    challenge_dns: str | None


def _address(text: object, file: Path) -> tuple[str, int]:
    if not isinstance(text, str) or ":" not in text:
        raise StorageConfigError(f"{file}: [remote] listen is HOST:PORT")
    host, _, port = text.rpartition(":")
    if not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise StorageConfigError(f"{file}: [remote] listen has a bad port")
    return host.strip("[]"), int(port)


def load_remote_config(directory: Path, path: Path | None = None) -> RemoteConfig | None:
    file = path if path is not None else directory / CONFIG_FILE
    if not file.exists():
        return None
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StorageConfigError(f"{file}: {exc}") from None
    section = data.get("remote")
    if section is None:
        return None
    if not isinstance(section, dict):
        raise StorageConfigError(f"{file}: [remote] is not a table")
    unknown = set(section) - {"domain", "listen", "public_port", "challenge_dns", "names"}
    if unknown:
        raise StorageConfigError(f"{file}: unknown [remote] keys: {', '.join(sorted(unknown))}")
    names = section.get("names", {})
    if not isinstance(names, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in names.items()
    ):
        raise StorageConfigError(f"{file}: [remote.names] maps names to gateway ids")
    domain = section.get("domain")
    if not isinstance(domain, str):
        raise StorageConfigError(f"{file}: [remote] needs a domain")
    try:
        table = NameTable(domain, dict(names))
    except RemoteNameError as exc:
        raise StorageConfigError(f"{file}: {exc.message}") from None
    host, port = _address(section.get("listen", "127.0.0.1:443"), file)
    public_port = section.get("public_port")
    if public_port is not None and (
        isinstance(public_port, bool) or not isinstance(public_port, int)
    ):
        raise StorageConfigError(f"{file}: [remote] public_port is an integer")
    dns = section.get("challenge_dns")
    if dns is not None and not isinstance(dns, str):
        raise StorageConfigError(f"{file}: [remote] challenge_dns is a URL")
    return RemoteConfig(table, host, port, public_port, dns)
