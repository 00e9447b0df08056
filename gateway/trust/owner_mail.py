"""The owner's mail to a gateway, as the relay carries it: one sealed item per message.

An item is the canonical JSON ``{"kind": ..., "token": ...}`` (kind ``revocations`` or
``approval``, token the owner-signed PASETO), padded and sealed to the gateway's key
(:mod:`gateway.trust.seal`). The relay stores and forwards opaque bytes: it cannot tell a
revocation from an approval, nor read who was revoked or which visit was approved. The token
inside is still checked against the owner's key on arrival; the seal only hides it.

Pure: no I/O.
"""

from __future__ import annotations

import json

from gateway.errors import GatewayError
from gateway.trust.seal import Sealer, SealError, Unsealer

MAIL_KINDS = ("revocations", "approval")
MAX_TOKEN_CHARS = 64 * 1024


class MailError(GatewayError):
    """A mail item does not open with the gateway's key or is not a mail item."""

    code = "bad_mail"


def seal_mail(gateway_public_key: bytes, kind: str, token: str) -> bytes:
    if kind not in MAIL_KINDS:
        raise MailError(f"mail kind must be one of {', '.join(MAIL_KINDS)}")
    if not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise MailError("a mail token is 1 to 65536 characters")
    plain = json.dumps({"kind": kind, "token": token}, sort_keys=True, separators=(",", ":"))
    return Sealer(gateway_public_key).seal(plain.encode())


def open_mail(unsealer: Unsealer, sealed: bytes) -> tuple[str, str]:
    try:
        data = json.loads(unsealer.open(sealed))
    # Anyone with the gateway's public key can seal any plaintext: JSON nested deeper than the
    # parser follows (RecursionError) or a number past int()'s digit limit (a plain
    # ValueError, not a JSONDecodeError) is just a malformed item, dropped like the others.
    except (SealError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MailError(f"mail item does not open: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("kind") not in MAIL_KINDS
        or not isinstance(data.get("token"), str)
    ):
        raise MailError("mail item is not a kind and a token")
    return str(data["kind"]), str(data["token"])
