"""Shared fixtures: every test runs against its own home and SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riverrun.store import RunStore
from riverrun.testing import riverrun_test_harness


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Iterator[RunStore]:
    """The run store of this test (a fresh SQLite file under ``tmp_path``)."""
    with riverrun_test_harness(tmp_path / "home") as run_store:
        yield run_store
