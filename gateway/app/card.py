"""The gateway card: where a phone learns the gateway's address, TLS pin and key.

docs/api.md, "The gateway card". A ticket names its gateway (``aud``) but carries neither
its address nor its TLS pin, so the owner gives each issuer this JSON object once and the
issuer hands it to the phone beside every ticket. Nothing in it is secret.

:class:`GatewayCard` and :func:`card_url` are pure; :func:`read_card` reads the gateway's
files (configuration, key, certificate) and this host's addresses.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse
from dataclasses import dataclass

from gateway.app.config import GatewayConfig
from gateway.errors import UsageError

#: What ``tls_fingerprint`` is (docs/api.md, "Fingerprint version 2").
FINGERPRINT_ALG = "spki-sha256"


@dataclass(frozen=True, slots=True)
class GatewayCard:
    gateway_id: str
    url: str
    public_key: str  # b64u Ed25519, the gateway key
    tls_fingerprint: str  # hex SHA-256 of the TLS key's SubjectPublicKeyInfo

    def as_json(self) -> str:
        """One line, the members in docs/api.md's order."""
        return json.dumps(
            {
                "gateway_id": self.gateway_id,
                "url": self.url,
                "public_key": self.public_key,
                "tls_fingerprint": self.tls_fingerprint,
                "tls_fingerprint_alg": FINGERPRINT_ALG,
            }
        )


class CardAddressError(UsageError):
    """No single address a phone can use: the owner must choose one (``--url``)."""

    code = "card_address"


def _url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def card_url(bind_host: str, port: int, lan_addresses: tuple[str, ...]) -> str:
    """The card's ``url`` for a gateway bound to ``bind_host:port``.

    A gateway bound to one address is reached there. Bound to every address of a family
    (``0.0.0.0``, ``::``), it is reached at this host's one LAN address of that family;
    with several (or none) the owner must choose, because a card holds one address and a
    wrong guess would send phones nowhere.
    """
    if port == 0:
        raise CardAddressError("[api] bind has port 0 (any free port): give the card --url")
    try:
        unspecified = ipaddress.ip_address(bind_host).is_unspecified
    except ValueError:
        unspecified = False  # a host name: phones resolve it
    if not unspecified:
        return _url(bind_host, port)
    # 0.0.0.0 listens on IPv4 only, and :: on IPv6 only (gateway.api.listener sets
    # IPV6_V6ONLY).
    version = ipaddress.ip_address(bind_host).version
    candidates = tuple(a for a in lan_addresses if ipaddress.ip_address(a).version == version)
    if len(candidates) != 1:
        found = ", ".join(candidates) if candidates else "none"
        raise CardAddressError(
            f"[api] bind is every IPv{version} address and this host has {len(candidates)} "
            f"such LAN address(es) ({found}): choose one with --url https://ADDRESS:{port}"
        )
    return _url(candidates[0], port)


def parse_card_url(text: str) -> str:
    """An owner's ``--url``: ``https://HOST:PORT`` and nothing else, normalised."""
    problem = "expected https://HOST:PORT (no path, query or user)"
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(f"--url {text!r}: {problem}") from None
    if (
        parts.scheme != "https"
        or not parts.hostname
        or port is None
        or port == 0
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise UsageError(f"--url {text!r}: {problem}")
    return _url(parts.hostname, port)


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this host's loopback (a card only this host can use)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def read_card(config: GatewayConfig, url: str | None = None) -> GatewayCard:
    """The card of the gateway ``config`` describes; ``url`` (already parsed) wins over the
    address derived from ``[api] bind``."""
    from gateway.app.identity import load_signing_key
    from gateway.app.tls import lan_addresses, tls_fingerprint
    from gateway.trust.base64url import b64u_encode

    if not config.api.tls:
        raise UsageError(
            "[api] tls = false: a card carries the TLS pin that authenticates the gateway, "
            "and the reference clients refuse plain HTTP; turn TLS on first"
        )
    if url is None:
        url = card_url(config.api.host, config.api.port, lan_addresses())
    key = load_signing_key(config.key_file)
    return GatewayCard(
        gateway_id=config.gateway_id,
        url=url,
        public_key=b64u_encode(bytes(key.verify_key)),
        tls_fingerprint=tls_fingerprint(config.api.tls_cert),
    )
