"""``riverrun database upgrade / reset`` on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riverrun import flow
from riverrun.cli.main import main
from riverrun.db.engine import HEAD_REVISION, create_db_engine, current_revision
from riverrun.settings import temporary_settings
from riverrun.store import close_stores, get_store
from tests.postgres import BACKENDS, empty_database

Capture = pytest.CaptureFixture[str]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database that RIVERRUN_DATABASE_URL points at during the test."""
    with empty_database(request.param, tmp_path) as url, temporary_settings(database_url=url):
        try:
            yield url
        finally:
            close_stores()


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@flow
def recorded() -> int:
    return 1


def test_upgrade_creates_the_schema_and_is_idempotent(database_url: str, capsys: Capture) -> None:
    engine = create_db_engine(database_url)
    try:
        assert current_revision(engine) is None
        for _ in range(2):
            code, out, err = cli(capsys, "database", "upgrade")
            assert (code, err) == (0, "")
            assert f"is at revision {HEAD_REVISION}" in out
        assert current_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()


def test_reset_needs_yes_and_then_empties_the_history(database_url: str, capsys: Capture) -> None:
    recorded()
    close_stores()
    code, _, err = cli(capsys, "database", "reset")
    assert code == 1 and "add --yes" in err
    assert len(get_store().read_flow_runs()) == 1  # nothing was touched
    close_stores()
    code, out, err = cli(capsys, "database", "reset", "--yes")
    assert (code, err) == (0, "")
    assert "it is empty" in out
    assert get_store().read_flow_runs() == []
    recorded()  # and it records again
    assert len(get_store().read_flow_runs()) == 1


def test_an_unreachable_database_is_one_line(capsys: Capture) -> None:
    with temporary_settings(database_url="postgresql+psycopg://app:pw@127.0.0.1:1/none"):
        code, _, err = cli(capsys, "database", "upgrade")
    assert code == 1
    assert err.startswith("Error: could not migrate the database at ")
    assert "pw@" not in err and len(err.strip().splitlines()) == 1
