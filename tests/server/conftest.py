"""An app per test, over this test's own SQLite file, driven through FastAPI's client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from riverrun.server import create_app
from riverrun.settings import get_settings, temporary_settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with temporary_settings(database_url=f"sqlite:///{tmp_path / 'api.db'}"):
        app = create_app(get_settings())
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()
