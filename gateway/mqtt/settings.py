"""The ``[mqtt]`` settings, as the configuration validated them (pure).

Defined here, beside the bridge that uses them, and read by :mod:`gateway.app.config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """``[mqtt]``: Home Assistant over MQTT (docs/operations.md); off without a ``host``."""

    host: str | None = None
    port: int = 1883
    #: TLS to the broker; on by default when the port is 8883.
    tls: bool = False
    #: The CA that signed the broker's certificate (None: the system's trust store).
    ca_file: Path | None = None
    username: str | None = None
    #: A file holding the broker password (mode 0600, checked at start).
    password_file: Path | None = None
    #: Where the gateway's own topics live: ``<prefix>/<gateway id>/...``.
    prefix: str = "threshold"
    #: Home Assistant's discovery prefix (its default).
    discovery_prefix: str = "homeassistant"
    #: Lock and unlock from Home Assistant: off unless the owner turns them on, and only
    #: ever over an authenticated, encrypted connection.
    commands: bool = False

    @property
    def enabled(self) -> bool:
        return self.host is not None
