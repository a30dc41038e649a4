"""Shared fixtures: every test runs against its own home and SQLite database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverrun.store import RunStore
from riverrun.testing import riverrun_test_harness

POSTGRES_URL = os.environ.get(
    "RIVERRUN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Iterator[RunStore]:
    """The run store of this test (a fresh SQLite file under ``tmp_path``)."""
    with riverrun_test_harness(tmp_path / "home") as run_store:
        yield run_store
