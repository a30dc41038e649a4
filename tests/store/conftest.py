"""Backends for the store tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL tests skip when the server is unreachable, except on CI (``CI=true``),
where a missing database must fail the build rather than silently skip half the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import BACKENDS, fresh_postgres_database


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on each backend (SQLite file / fresh PostgreSQL DB)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'backend' / 'riverrun.db'}"
        return
    with fresh_postgres_database() as url:
        yield url
