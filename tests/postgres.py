"""Test helpers shared by the store and database tests: a fresh PostgreSQL database.

PostgreSQL tests skip when the server is unreachable, except on CI (``CI=true``),
where a missing database must fail the build rather than silently skip half the suite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from riverrun.store import close_stores

POSTGRES_URL = os.environ.get(
    "RIVERRUN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def postgres_unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (on CI) a test that needs PostgreSQL."""
    message = f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()} is unreachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)")
    pytest.skip(message)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database ``riverrun_t_<hex>``, yield its URL, then drop it."""
    base = make_url(POSTGRES_URL)
    admin = create_engine(
        base.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    name = f"riverrun_t_{uuid.uuid4().hex[:16]}"
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except OperationalError as error:
            postgres_unavailable(str(error.orig or error).strip().splitlines()[0])
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            # Every engine on the database must let go before it can be dropped.
            close_stores()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file under ``tmp_path``, or a fresh
    PostgreSQL database dropped afterwards (``backend`` is a ``BACKENDS`` value)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty' / 'riverrun.db'}"
        return
    with fresh_postgres_database() as url:
        yield url
