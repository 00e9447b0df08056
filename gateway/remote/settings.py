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
    #: Renew when less than this fraction of the certificate's lifetime is left (0.3 of a
    #: 90-day certificate is 27 days, near Let's Encrypt's advice of 30).
    renew_fraction: float = 0.3
    #: The port browsers reach the relay's SNI front on (443 for a real relay).
    public_port: int = 443
    #: The owner app on the home network under the same name (docs/remote.md, "At home"):
    #: the address to serve it on with the remote certificate; None: not served on the LAN.
    lan_host: str | None = None
    lan_port: int = 443

    @property
    def host_name(self) -> str:
        return f"{self.name}.{self.domain}"

    @property
    def origin(self) -> str:
        """The app's origin through the relay (and, with a local DNS override, at home)."""
        return _origin(self.host_name, self.public_port)

    @property
    def lan_origin(self) -> str | None:
        """The app's origin on the home network (the same when the ports agree)."""
        return None if self.lan_host is None else _origin(self.host_name, self.lan_port)


def _origin(host: str, port: int) -> str:
    return f"https://{host}" if port == 443 else f"https://{host}:{port}"
