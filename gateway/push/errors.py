"""Web Push's errors: one base, typed subclasses with stable codes."""

from __future__ import annotations

from gateway.errors import ConfigError, GatewayError


class PushError(GatewayError):
    """Base of every deliberate error of Web Push."""

    code = "push_error"


class PushKeyRefused(ConfigError):
    """The VAPID key file cannot be read, is not a P-256 key, or is readable by others."""

    code = "push_key_refused"


class PayloadTooLarge(PushError):
    """A notice does not fit the one padded size even with its text shortened (a bug)."""

    code = "push_payload_too_large"
