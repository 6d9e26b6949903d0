"""The state contract runs on both backends: every test that asks for ``location`` runs
once on a SQLite file and once on a fresh database of a real PostgreSQL
(:mod:`tests.state.postgres`; skipped with the reason where it cannot run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caldaemon.state.db import Location
from tests.state.postgres import Postgres, start_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """Where a test's state lives: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "state" / "state.sqlite3"
    server: Postgres = request.getfixturevalue("postgres")
    return server.location(server.create_database())
