"""The access service's revocations: every list for this gateway adds to what the ledger
holds, nothing takes an entry away, and a list already held costs no write (issue 11,
finding 2, through the split access layer and the in-memory ledger)."""

from __future__ import annotations

import pytest

from gateway.access.admission import AccessSettings
from gateway.access.errors import AccessCode, DocumentRejected
from gateway.access.policy import PolicyRules
from gateway.access.service import AccessService
from gateway.trust.revocation import RevokedKind, sign_revocations
from tests.support.ledger import MemoryLedger
from tests.support.tickets import GATEWAY, ZONE, Household, revocation_list

HOME = Household()


async def started() -> tuple[AccessService, MemoryLedger]:
    ledger = MemoryLedger(GATEWAY)
    service = AccessService(AccessSettings(GATEWAY, HOME.anchors, ZONE, PolicyRules()), ledger, {})
    await service.start()
    return service, ledger


async def test_lists_only_add_and_a_list_held_already_is_not_written_again() -> None:
    service, ledger = await started()
    first = sign_revocations(revocation_list(1, jti=("t-cleaner",)), HOME.owner)
    assert await service.set_revocations(first) == 1
    assert await service.set_revocations(first) == 1
    assert ledger.revocation_tokens == [first]  # the second time it was covered
    # A later list that leaves the cleaner out adds its own entry and takes nothing away.
    later = sign_revocations(revocation_list(2, jti=("t-phone",)), HOME.owner)
    assert await service.set_revocations(later) == 2
    held = await ledger.revocations(HOME.anchors)
    assert set(held.until) == {(RevokedKind.TICKET, "t-cleaner"), (RevokedKind.TICKET, "t-phone")}
    # An older list naming nothing new changes nothing and is not written.
    older = sign_revocations(revocation_list(0, jti=("t-cleaner",)), HOME.owner)
    assert await service.set_revocations(older) == 2
    assert ledger.revocation_tokens == [first, later]


async def test_a_list_for_another_gateway_is_rejected_and_not_written() -> None:
    service, ledger = await started()
    cabin = sign_revocations(revocation_list(5, aud=("gw-cabin",), jti=("t-x",)), HOME.owner)
    with pytest.raises(DocumentRejected) as rejected:
        await service.set_revocations(cabin)
    assert rejected.value.access_code is AccessCode.WRONG_GATEWAY
    assert ledger.revocation_tokens == []


async def test_what_the_ledger_holds_is_read_at_start() -> None:
    service, ledger = await started()
    await service.set_revocations(
        sign_revocations(revocation_list(3, jti=("t-cleaner",)), HOME.owner)
    )
    again = AccessService(AccessSettings(GATEWAY, HOME.anchors, ZONE, PolicyRules()), ledger, {})
    await again.start()
    older = sign_revocations(revocation_list(1, jti=("t-cleaner",)), HOME.owner)
    assert await again.set_revocations(older) == 3
    assert len(ledger.revocation_tokens) == 1
