"""Contract fixtures: one store per backend (memory, SQLite, PostgreSQL), all held to the same
tests. The SQL backends use the session's Django databases of the integration tier."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from gristmill.engine.store import Store
from gristmill.store.memory import MemoryStore
from tests.conftest import service_absent
from tests.integration.conftest import databases

__all__ = ["databases"]  # the integration tier's fixture, shared rather than repeated

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A store on each backend. The SQL ones share their database with the whole session:
    tests keep to their own queue (:func:`queue`) and runs."""
    if request.param == "memory":
        yield MemoryStore()
        return
    from gristmill.server.store import DjangoStore

    info = request.getfixturevalue("databases")
    if request.param == "postgres" and not info["pg_url"]:
        service_absent(info["pg_reason"])
    sql = DjangoStore("postgres" if request.param == "postgres" else "default")
    try:
        yield sql
    finally:
        sql.close()


@pytest.fixture
def queue() -> str:
    """A queue of this test's own, so that claims see only its units."""
    return f"contract-{uuid.uuid4().hex[:8]}"
