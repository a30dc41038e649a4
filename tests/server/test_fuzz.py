"""Fuzzing the OpenAPI spec with schemathesis: no input makes the server answer 500.

Each operation gets generated bodies, valid and invalid, from the spec itself; the
check is that every answer is below 500, on SQLite and on PostgreSQL (whose columns
refuse more: NUL characters, integers past 64 bits). Bounded (a few examples an
operation) and marked slow.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from riverrun.db.engine import create_db_engine, migrate
from riverrun.server import create_app
from riverrun.settings import Settings
from tests.postgres import BACKENDS, fresh_postgres_database

_HOME = Path(tempfile.mkdtemp(prefix="riverrun-fuzz-"))
app = create_app(
    Settings(
        home=_HOME,
        database_url=f"sqlite:///{_HOME / 'fuzz.db'}",
        api_url=None,
        logging_level="INFO",
        flush_interval=0.2,
        no_color=True,
    )
)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
_SQLITE_ENGINE = app.state.engine


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Point the app at this backend's database for the test (the routes read the
    engine from the app's state on every request)."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    with fresh_postgres_database() as url:
        engine = create_db_engine(url)
        migrate(engine)
        app.state.engine = engine
        try:
            yield "postgres"
        finally:
            app.state.engine = _SQLITE_ENGINE
            engine.dispose()


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_input_makes_a_server_error(case: schemathesis.Case[Any], backend: str) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
