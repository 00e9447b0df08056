"""Every access code has exactly one HTTP status, kept in the API layer alone."""

from __future__ import annotations

from gateway.access.errors import AccessCode
from gateway.api.problems import ACCESS_STATUS


def test_every_access_code_has_a_status() -> None:
    assert set(ACCESS_STATUS) == set(AccessCode)


def test_the_statuses_docs_api_md_lists() -> None:
    assert ACCESS_STATUS[AccessCode.EXPIRED] == 403
    assert ACCESS_STATUS[AccessCode.DOOR_BUSY] == 409
    assert ACCESS_STATUS[AccessCode.LOCK_UNAVAILABLE] == 503
    assert ACCESS_STATUS[AccessCode.STORAGE_UNAVAILABLE] == 503
    assert ACCESS_STATUS[AccessCode.NOT_FOUND] == 404
    assert ACCESS_STATUS[AccessCode.NOT_AWAITING_APPROVAL] == 409
