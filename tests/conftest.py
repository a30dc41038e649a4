"""Shared fixtures: every test runs against its own home and SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riverrun.store import RunStore
from riverrun.testing import riverrun_test_harness
from tests.serverprocess import ServerProcess, running_server


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Iterator[RunStore]:
    """The run store of this test (a fresh SQLite file under ``tmp_path``)."""
    with riverrun_test_harness(tmp_path / "home") as run_store:
        yield run_store


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``riverrun server start`` subprocess (on SQLite) for the whole session."""
    with running_server(tmp_path_factory.mktemp("api-server")) as server:
        yield server


@pytest.fixture
def empty_api_server(api_server: ServerProcess) -> str:
    """The session server's API URL, its database emptied for this test."""
    from sqlalchemy import create_engine

    from riverrun.db.tables import metadata

    engine = create_engine(api_server.database_url)
    try:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
    finally:
        engine.dispose()
    return api_server.api_url
