"""The remote-reach errors: one base, typed subclasses with stable codes."""

from __future__ import annotations

from gateway.errors import GatewayError


class RemoteError(GatewayError):
    """Remote reach failed; the tunnel or the certificate task tries again later."""

    code = "remote_failed"


class RelayRefused(RemoteError):
    """The relay answered and said no (a name not routed, another gateway's name, a bad
    signature): retrying will not help until the configuration changes."""

    code = "remote_refused"


class RelayUnavailable(RemoteError):
    """The relay (or its SNI front) did not answer, or answered 5xx."""

    code = "remote_unavailable"


class CertificateFailed(RemoteError):
    """The ACME server did not issue the remote name's certificate."""

    code = "remote_certificate_failed"
