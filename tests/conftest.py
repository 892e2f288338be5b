"""Fixtures shared by unit and integration tests."""

from collections.abc import Iterator

import pytest

from tests.postgres import fresh_database, postgres_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[tuple[str, int]]:
    """One real PostgreSQL server for the test session."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: tuple[str, int]) -> str:
    """A fresh database on that server (SQLAlchemy URL)."""
    return fresh_database(postgres)
