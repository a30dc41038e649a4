"""Fuzzing the OpenAPI spec with schemathesis: no input makes the server answer 500.

Each operation gets generated bodies, valid and invalid, from the spec itself; the
check is that every answer is below 500. Bounded (a few examples an operation) and
marked slow.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from riverrun.server import create_app
from riverrun.settings import Settings

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


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_input_makes_a_server_error(case: schemathesis.Case[Any]) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
