"""The ``[push]`` settings, as the configuration validated them (pure).

Defined here, beside the sender that uses them, and read by :mod:`gateway.app.config`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: RFC 8292 §2.1: the ``sub`` claim is a ``mailto:`` or an ``https:`` URI the push service
#: can use to reach the sender's operator.
SUBJECT_RE = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?)$")


@dataclass(frozen=True, slots=True)
class PushConfig:
    """``[push]``: Web Push to the owner's devices (docs/owner-app.md, "Notifications")."""

    enabled: bool = True
    #: The VAPID ``sub`` claim: how a push service reaches whoever runs this gateway.
    subject: str = "mailto:owner@threshold.invalid"
    #: The window a push is worth sending in (s): older ones are dropped, and the push
    #: service is told to keep a message no longer than what is left of it (its TTL).
    ttl_s: int = 300
    #: Extra CA certificates to trust for push services (PEM), besides the system's: a
    #: private push service, or the tests' one on loopback. None: the system's only.
    ca_file: Path | None = None
    #: Where the gateway's VAPID key lives (PEM, mode 0600, made at init or first start).
    key_file: Path = Path("vapid.key")
