"""Remote names: which TLS server names the relay's SNI front routes, and to which gateway.
Pure.

A gateway reachable from outside has one remote name, a single DNS label (RFC 1035 §2.3.1,
lower case: letters, digits, inner hyphens, at most 63 characters), under the relay's
domain: ``<name>.<domain>``. The relay's operator assigns names to registered gateway ids
(``[remote.names]`` in relay.toml, docs/remote.md); the relay routes exactly those host
names and refuses every other, and it gives a tunnel token or publishes an ACME challenge for
a name only to the gateway the name is assigned to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cloud.errors import CloudError

_LABEL_TEXT = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LABEL = re.compile(_LABEL_TEXT)
_DOMAIN = re.compile(rf"(?:{_LABEL_TEXT}\.)*{_LABEL_TEXT}")
#: The prefix of a DNS-01 challenge's TXT record (RFC 8555 §8.4).
ACME_CHALLENGE_LABEL = "_acme-challenge"


class RemoteNameError(CloudError):
    """A remote name or relay domain that is not a DNS name this relay can route."""

    code = "bad_remote_name"


class NameNotRouted(CloudError):
    """The relay routes no such name."""

    code = "name_not_routed"


class NameNotYours(CloudError):
    """The name is routed to another gateway: a gateway may only ask for its own."""

    code = "name_not_yours"


def check_label(name: str) -> str:
    if not _LABEL.fullmatch(name):
        raise RemoteNameError(
            "a remote name is one DNS label: a-z, 0-9 and inner hyphens, 1 to 63 characters"
        )
    return name


def check_domain(domain: str) -> str:
    if len(domain) > 200 or not _DOMAIN.fullmatch(domain):
        raise RemoteNameError("the relay's domain is a lower-case DNS name")
    return domain


def host_name(name: str, domain: str) -> str:
    """The TLS server name (and certificate name) of a remote name."""
    return f"{check_label(name)}.{check_domain(domain)}"


def challenge_name(name: str, domain: str) -> str:
    """The DNS name of the remote name's DNS-01 TXT record."""
    return f"{ACME_CHALLENGE_LABEL}.{host_name(name, domain)}"


@dataclass(frozen=True, slots=True)
class NameTable:
    """The names the relay routes: remote name -> the registered gateway id it belongs to."""

    domain: str
    names: Mapping[str, str]

    def __post_init__(self) -> None:
        check_domain(self.domain)
        for name in self.names:
            check_label(name)

    def owned_by(self, name: str, gateway_id: str) -> str:
        """The host name for ``name`` if it is routed to ``gateway_id``; else a typed refusal
        (:class:`NameNotRouted`, :class:`NameNotYours`). Only an authenticated gateway asks,
        so telling the two apart reveals nothing to an outsider."""
        owner = self.names.get(name)
        if owner is None:
            raise NameNotRouted(f"the relay routes no remote name {name!r}")
        if owner != gateway_id:
            raise NameNotYours(f"the remote name {name!r} belongs to another gateway")
        return host_name(name, self.domain)

    def routes(self, server_name: str) -> bool:
        """Whether a TLS server name is one of the routed host names."""
        suffix = "." + self.domain
        if not server_name.endswith(suffix):
            return False
        return server_name[: -len(suffix)] in self.names
