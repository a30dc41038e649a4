"""Backends for the store tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL tests skip when the server is unreachable, except on CI (``CI=true``),
where a missing database must fail the build rather than silently skip half the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import BACKENDS, empty_database


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on each backend (SQLite file / fresh PostgreSQL DB)."""
    with empty_database(request.param, tmp_path) as url:
        yield url
