"""The gateway package's exceptions.

Every error raised on purpose by ``gateway`` derives from :class:`GatewayError` and carries a
stable, machine-readable ``code``. The LAN API turns the code into a problem+json ``code``;
the CLI prints it on one line. Codes never change once released: phone apps key on them.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every deliberate error in the gateway package."""

    code: ClassVar[str] = "gateway_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(GatewayError):
    """The configuration is invalid; the message names the key and the problem."""

    code = "bad_config"


class UsageError(GatewayError):
    """The command line or an input file is unusable (CLI exit code 2)."""

    code = "usage"
