"""Issue 11, finding 2: a revoked holder un-revokes themselves with another revocation list.

The attack as reproduced: one owner key, two gateways (home and the cabin). The owner revokes
the ex-cleaner at home (list 1), then a lost phone at the cabin (list 2). The ex-cleaner
attaches the cabin's list to a request at home; home adopted it (higher ``seq``), forgot its
own revocation and opened the door. With one gateway, any later list that left an entry out
did the same. Here against the real gateway over HTTPS, with the owner's real tooling
(``threshold revocations sign``) signing the lists.
"""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from ble.nuki.frames import Command
from ble.nuki.messages import LockAction
from gateway.cli.inputs import write_secret_key
from gateway.clients.lan import ApiProblem
from gateway.trust.base64url import b64u_encode
from gateway.trust.claims import decode_object
from gateway.trust.keys import TrustAnchors
from gateway.trust.paseto import peek
from gateway.trust.revocation import sign_revocations, verify_revocations
from tests.support.cli import run_cli
from tests.support.service import GATEWAY_ID, GatewayHarness, IssuedTicket, harness, secret64
from tests.support.tickets import revocation_list

__all__ = ["harness"]

HOME = GATEWAY_ID
CABIN = "gw-cabin"


async def owner_signs(owner_key: Path, gateway: str, *what: str) -> str:
    """``threshold revocations sign`` as the owner runs it (state file beside the key)."""
    result = await asyncio.to_thread(
        run_cli, "revocations", "sign", "--owner-key", str(owner_key), "--gateway", gateway, *what
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def owner_key_file(harness: GatewayHarness, directory: Path) -> Path:
    path = directory / "owner.key"
    write_secret_key(str(path), secret64(harness.keys.owner))
    return path


async def post_list(harness: GatewayHarness, token: str) -> None:
    await harness.client.owner(
        harness.keys.owner, "POST", "/v1/owner/revocations", {"revocations": token}
    )


async def refusal(harness: GatewayHarness, t: IssuedTicket, **kw: str) -> ApiProblem:
    with pytest.raises(ApiProblem) as info:
        await harness.open(t, package_code="PKG-1", **kw)
    return info.value


def unlocks(harness: GatewayHarness) -> int:
    return harness.sim.lock.count(Command.LOCK_ACTION, LockAction.UNLOCK)


async def test_the_cabins_list_does_not_unrevoke_the_ex_cleaner_at_home(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    key = owner_key_file(harness, tmp_path)
    cleaner = harness.ticket(subject="ex-cleaner", uses=5)
    lost_phone = bytes(SigningKey.generate().verify_key)

    home_list = await owner_signs(key, HOME, "--subject", "ex-cleaner")
    await post_list(harness, home_list)
    assert (await refusal(harness, cleaner)).code == "revoked"

    cabin_list = await owner_signs(key, CABIN, "--key", b64u_encode(lost_phone))
    assert decode_object(peek(cabin_list)[0])["seq"] > decode_object(peek(home_list)[0])["seq"]

    # The attack: the cabin's (newer) list attached to the ex-cleaner's request at home.
    attacked = await refusal(harness, cleaner, revocations=cabin_list)
    assert attacked.code in ("wrong_gateway", "revoked")
    # The owner's route refuses it too, and home still holds its own revocation afterwards.
    with pytest.raises(ApiProblem) as info:
        await post_list(harness, cabin_list)
    assert info.value.code == "wrong_gateway"
    assert (await refusal(harness, cleaner)).code == "revoked"
    assert unlocks(harness) == 0


async def test_a_later_list_that_omits_an_entry_does_not_unrevoke_it(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    owner = harness.keys.owner
    now = datetime.now(UTC).replace(microsecond=0)
    until = now + timedelta(days=1)
    cleaner = harness.ticket(subject="ex-cleaner", uses=5)
    first = revocation_list(1, aud=(HOME,), iat=now, until=until, jti=(cleaner.jti,))
    await post_list(harness, sign_revocations(first, secret64(owner)))
    assert (await refusal(harness, cleaner)).code == "revoked"

    # A later list from tooling that kept no state: it names only the lost phone.
    phone = bytes(SigningKey.generate().verify_key)
    later = revocation_list(2, aud=(HOME,), iat=now, until=until, keys=(phone,))
    token = sign_revocations(later, secret64(owner))
    assert (await refusal(harness, cleaner, revocations=token)).code == "revoked"
    await post_list(harness, token)
    assert (await refusal(harness, cleaner)).code == "revoked"
    assert unlocks(harness) == 0


async def test_the_owners_tooling_carries_what_it_revoked_into_the_next_list(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    key = owner_key_file(harness, tmp_path)
    anchors = TrustAnchors.of(bytes(harness.keys.owner.verify_key))
    await owner_signs(key, HOME, "--subject", "ex-cleaner")
    second = await owner_signs(key, HOME, "--jti", "t-lost-phone")
    held = verify_revocations(second, anchors, gateway_id=HOME)
    assert {e.value for e in held.entries} == {"ex-cleaner", "t-lost-phone"}
    assert held.seq == 2
    state = tmp_path / "owner.revocations.json"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    # A new gateway that never saw the first list gets it all from the second.
    cleaner = harness.ticket(subject="ex-cleaner")
    assert (await refusal(harness, cleaner, revocations=second)).code == "revoked"
