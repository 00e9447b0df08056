"""Fuzzing the owner's mail and the seal under it (:mod:`gateway.trust.owner_mail`,
:mod:`gateway.trust.seal`): what the gateway pulls from the relay's mailbox. A sealed box
needs only the gateway's *public* key, so anyone (a hostile relay included) can seal any
plaintext to it. Only :class:`~gateway.trust.owner_mail.MailError` (and, below it,
:class:`~gateway.trust.seal.SealError`) may escape: the sync task drops an item that raises
one and moves its cursor on, while anything else wedged the mailbox on that item for good.
"""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from gateway.trust.owner_mail import MailError, open_mail, seal_mail
from gateway.trust.seal import Sealer, SealError, Unsealer, pad, unpad
from tests.fuzz.fuzzing import FUZZ, JSON, only

GATEWAY = SigningKey(bytes(range(32)))
UNSEALER = Unsealer(bytes(GATEWAY) + bytes(GATEWAY.verify_key))
SEALER = Sealer(bytes(GATEWAY.verify_key))

PLAINTEXTS = (
    st.binary(max_size=200)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries(
        {"kind": st.sampled_from(["approval", "revocations"]) | JSON, "token": JSON}
    ).map(lambda v: json.dumps(v).encode())
)


@FUZZ
@given(PLAINTEXTS)
# Nesting deeper than the JSON parser follows: RecursionError escaped (bug found here).
@example(b"[" * 100_000)
# A number of more than 4,300 digits: int()'s ValueError escaped (bug found here).
@example(b"9" * 5000)
def test_sealed_mail_of_any_plaintext_raises_only_mail_errors(plain: bytes) -> None:
    sealed = SEALER.seal(plain)
    opened = only(MailError, lambda: open_mail(UNSEALER, sealed))
    if opened is not None:
        kind, token = opened
        assert kind in ("approval", "revocations")
        assert isinstance(token, str)


@FUZZ
@given(st.binary(max_size=700))
def test_unsealed_garbage_raises_only_mail_errors(data: bytes) -> None:
    only(MailError, lambda: open_mail(UNSEALER, data))
    only(SealError, lambda: UNSEALER.open(data))
    only(SealError, lambda: unpad(data))


def test_real_mail_opens() -> None:
    """The control: mail as the owner's tooling seals it opens to its kind and token."""
    sealed = seal_mail(bytes(GATEWAY.verify_key), "approval", "v4.public.x")
    assert open_mail(UNSEALER, sealed) == ("approval", "v4.public.x")
    assert unpad(pad(b"entry")) == b"entry"
