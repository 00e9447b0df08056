"""Keys for people: the household issuer at run time, and (docs/visitors.md) the owner's
invitations of cleaners, dog walkers and guests, claimed by the visitor's browser.

:class:`Visitors` is the one owner of the household issuer (:mod:`gateway.owner.household`)
while the gateway runs: it takes the owner's re-certification (recorded in the audit log) and
issues within the certificate's caps.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.owner.household import (
    Household,
    check_certificate,
    load_household,
    store_certificate,
)
from gateway.trust.base64url import b64u_encode
from gateway.trust.certificate import allowances
from gateway.trust.keys import TrustAnchors
from store.db import Store
from store.transaction import StoreTransaction

log = logging.getLogger("threshold.visitors")


class Visitors:
    """See the module docstring."""

    def __init__(
        self, directory: Path, anchors: TrustAnchors, gateway_id: str, store: Store
    ) -> None:
        self.directory = directory
        self.anchors = anchors
        self.gateway_id = gateway_id
        self.store = store
        self.household: Household = load_household(directory, anchors, gateway_id)

    def describe(self) -> dict[str, Any]:
        """The household issuer as the owner reads it: its key and what it may do."""
        cert = self.household.cert
        return {
            "public_key": b64u_encode(self.household.public_key),
            "gateway_id": self.gateway_id,
            "certificate": self.household.certificate,
            "allowances": [] if cert is None else allowances(cert),
        }

    async def certify(self, token: str) -> dict[str, Any]:
        """Take the owner's (new) certificate for the household issuer, recorded."""
        cert = check_certificate(token, self.anchors, self.household.public_key, self.gateway_id)
        self.household = await asyncio.to_thread(
            store_certificate, self.directory, self.household, token, cert
        )

        def write(tx: StoreTransaction) -> None:
            tx.append(
                "household.certified",
                {
                    "certificate": cert.jti,
                    "doors": list(cert.doors or ()),
                    "purposes": [p.value for p in cert.purposes or ()],
                    "exp_ms": int(cert.exp.timestamp() * 1000),
                },
            )

        await self.store.transact(write)
        log.info("household issuer certified (%s) until %s", cert.jti, cert.exp.isoformat())
        return self.describe()

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)
