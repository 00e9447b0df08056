"""Shared fixtures. Test data copied from ../shared/vectors lives in tests/data.

``relay_backend`` runs a test once per relay storage backend (SQLite, PostgreSQL); the
PostgreSQL cluster behind it starts once per session, on first use, and a missing
PostgreSQL installation fails the test with the install hint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import Cluster, PostgresMissing, start_cluster
from tests.support.relay_backend import RelayBackend

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    try:
        cluster = start_cluster()
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def relay_backend(request: pytest.FixtureRequest) -> RelayBackend:
    if request.param == "sqlite":
        return RelayBackend("sqlite")
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    return RelayBackend("postgresql", cluster)
