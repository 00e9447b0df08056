"""The ``[remote]`` settings, as the configuration validated them (pure).

Defined here, beside the tunnel and the certificate that use them, and read by
:mod:`gateway.app.config`. The relay itself is ``[cloud] url`` (the same relay, the same
registered gateway key).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """``[remote]``: reach from anywhere through the relay (docs/remote.md); off by default."""

    enabled: bool = False
    #: The gateway's remote name (one DNS label), assigned by the relay's operator.
    name: str = ""
    #: The relay's domain: the remote host name is ``<name>.<domain>``.
    domain: str = ""
    #: The ACME directory the certificate comes from (RFC 8555 §7.1.1).
    acme_directory: str = "https://acme-v02.api.letsencrypt.org/directory"
    #: A CA bundle for the ACME server's own HTTPS (None: the system's; Pebble's in tests).
    acme_ca_file: str | None = None
    #: The contact address given to the ACME server (optional, RFC 8555 §7.3).
    acme_email: str | None = None
    #: Renew when less than this fraction of the certificate's lifetime is left.
    renew_fraction: float = 1 / 3
    #: The owner app on the home network under the same name (docs/remote.md, "At home"):
    #: HOST:PORT to listen on with the remote certificate; empty: not served on the LAN.
    lan_listen: str = ""

    @property
    def host_name(self) -> str:
        return f"{self.name}.{self.domain}"

    @property
    def origin(self) -> str:
        """The app's origin through the relay (and, with a local DNS override, at home)."""
        return f"https://{self.host_name}"
