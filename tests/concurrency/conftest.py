"""Backends for the concurrency tests: a SQLite file, or a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riverrun.store import RunStore
from riverrun.testing import riverrun_test_harness
from tests.postgres import BACKENDS, empty_database


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on each backend (SQLite file / fresh PostgreSQL DB)."""
    with empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def run_store(database_url: str, tmp_path: Path) -> Iterator[RunStore]:
    """The store on this test's backend; ``concurrency()`` outside a flow uses it."""
    with riverrun_test_harness(tmp_path / "home", database_url=database_url) as store:
        yield store
