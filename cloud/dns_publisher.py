"""The relay's DNS publisher: the seam through which a gateway's DNS-01 challenge becomes a
TXT record under the relay's domain (RFC 8555 §8.4; docs/remote.md).

The relay publishes only ``_acme-challenge.<name>.<domain>`` for the gateway the name is
assigned to, and only the value the gateway sends: the key authorization's digest, never a
key. :class:`ChallengeTestServer` drives Pebble's challenge test server
(``pebble-challtestsrv``, its management API's ``/set-txt`` and ``/clear-txt``), the DNS the
tests and the loopback demo point Pebble at; a production relay puts its DNS provider's API
behind the same two methods.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp

from cloud.errors import CloudError

REQUEST_TIMEOUT_S = 10.0


class DnsPublishFailed(CloudError):
    """The DNS provider did not take the record."""

    code = "dns_publish_failed"


class DnsPublisher(Protocol):
    async def set_txt(self, fqdn: str, value: str) -> None: ...

    async def clear_txt(self, fqdn: str) -> None: ...


class ChallengeTestServer:
    """pebble-challtestsrv's management API (``-management``, default port 8055)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def _post(self, path: str, body: dict[str, str]) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.url + path, json=body) as response,
            ):
                if response.status != 200:
                    raise DnsPublishFailed(f"the DNS server answered {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DnsPublishFailed(f"the DNS server did not answer: {type(exc).__name__}") from None

    async def set_txt(self, fqdn: str, value: str) -> None:
        await self._post("/set-txt", {"host": fqdn.rstrip(".") + ".", "value": value})

    async def clear_txt(self, fqdn: str) -> None:
        await self._post("/clear-txt", {"host": fqdn.rstrip(".") + "."})
