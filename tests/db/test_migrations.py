"""The Alembic tree: one head, equal to ``HEAD_REVISION``, and a schema equal to ``tables``.

Runs on a SQLite file and on a fresh PostgreSQL database (skipped when PostgreSQL is
unreachable, failed instead when ``CI=true``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

import riverrun.db.engine
from riverrun.db.engine import HEAD_REVISION, create_db_engine, current_revision, migrate
from riverrun.db.tables import metadata
from tests.postgres import BACKENDS, empty_database

MIGRATIONS = Path(riverrun.db.engine.__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new PostgreSQL database dropped after."""
    with empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def empty_engine(empty_database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(empty_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_the_alembic_head_is_head_revision() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD_REVISION]


def test_upgrading_an_empty_database_gives_exactly_the_tables(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    assert schema_differences(empty_engine), "the comparison should see the missing tables"
    migrate(empty_engine)
    assert current_revision(empty_engine) == HEAD_REVISION
    assert schema_differences(empty_engine) == []
    assert set(inspect(empty_engine).get_table_names()) == {
        *metadata.tables,
        "alembic_version",
    }


def test_an_empty_database_is_created_at_head_without_alembic(
    empty_database_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "create.py"
    script.write_text(_MIGRATE_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), empty_database_url], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # alembic was never imported
    engine = create_db_engine(empty_database_url)
    try:
        assert current_revision(engine) == HEAD_REVISION
        assert schema_differences(engine) == []
        # Alembic agrees about the stamp: it can take this database down and up again.
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_tables_without_a_revision_are_not_taken_for_an_empty_database(
    empty_engine: Engine,
) -> None:
    with empty_engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
        command.downgrade(alembic_config(connection), "base")
    assert current_revision(empty_engine) is None
    with empty_engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE flow_runs (id VARCHAR(36) PRIMARY KEY)")
    # Tables without a revision are not an empty database: refuse to guess, let Alembic
    # try (and fail loudly) rather than create the rest around them.
    with pytest.raises(Exception, match="flow_runs"):
        migrate(empty_engine)


def test_downgrade_to_base_then_upgrade_again(empty_engine: Engine) -> None:
    migrate(empty_engine)
    with empty_engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    assert current_revision(empty_engine) is None

    with empty_engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    assert current_revision(empty_engine) == HEAD_REVISION
    assert schema_differences(empty_engine) == []


_MIGRATE_SCRIPT = textwrap.dedent(
    """
    import sys

    from riverrun.db.engine import create_db_engine, migrate

    engine = create_db_engine(sys.argv[1])
    migrate(engine)
    engine.dispose()
    print("alembic" in sys.modules)
    """
)


def test_migrate_on_an_up_to_date_database_does_not_import_alembic(
    empty_database_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "migrate_once.py"
    script.write_text(_MIGRATE_SCRIPT)

    def run() -> str:
        done = subprocess.run(
            [sys.executable, str(script), empty_database_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    run()  # creates the schema
    assert run() == "False", "migrate() imported alembic on an up-to-date database"
