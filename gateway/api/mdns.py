"""mDNS advertisement of the LAN API: ``_threshold._tcp.local.`` with zeroconf (docs/api.md,
"Finding the gateway and trusting it").

The TXT record carries what a phone needs before its first request: the gateway ``id``, the
fingerprint of its TLS key ``fp`` (to pin; ``fpalg`` names it: ``spki-sha256``, see
``gateway.trust.tls_pin``), the ``api`` version and the ``scheme``. zeroconf is bound to the
API's own address only, so a gateway listening on 127.0.0.1 (tests, the demo) never
announces itself on the real network.
"""

from __future__ import annotations

import ipaddress

from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from gateway.trust.tls_pin import ALGORITHM

SERVICE_TYPE = "_threshold._tcp.local."


def service_info(
    gateway_id: str, host: str, port: int, fingerprint: str | None, api_version: str, tls: bool
) -> AsyncServiceInfo:
    address = ipaddress.ip_address(host)
    properties = {
        "id": gateway_id,
        "api": api_version,
        "scheme": "https" if tls else "http",
    }
    if fingerprint:
        properties["fp"] = fingerprint
        properties["fpalg"] = ALGORITHM
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"{gateway_id}.{SERVICE_TYPE}",
        addresses=[address.packed],
        port=port,
        properties=properties,
        server=f"{gateway_id}.local.",
    )


class MdnsAdvertiser:
    """Registers the service on start and unregisters it (and closes sockets) on stop."""

    def __init__(self, info: AsyncServiceInfo, interface: str) -> None:
        self.info = info
        self.interface = interface
        self._zc: AsyncZeroconf | None = None

    async def start(self) -> None:
        interfaces: list[str] | InterfaceChoice = InterfaceChoice.All
        if self.interface not in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
            interfaces = [self.interface]
        ip_version = (
            IPVersion.V6Only
            if isinstance(ipaddress.ip_address(self.interface), ipaddress.IPv6Address)
            else IPVersion.V4Only
        )
        self._zc = AsyncZeroconf(interfaces=interfaces, ip_version=ip_version)
        await self._zc.async_register_service(self.info, allow_name_change=True)

    async def stop(self) -> None:
        zc, self._zc = self._zc, None
        if zc is None:
            return
        try:
            await zc.async_unregister_service(self.info)
        finally:
            await zc.async_close()
