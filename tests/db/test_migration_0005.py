"""Revision 0005 (event ids on states and logs, the flows table) keeps existing history
both ways, on a SQLite file and on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from riverrun.db.engine import create_db_engine, current_revision
from tests.db.test_migrations import alembic_config, schema_differences
from tests.postgres import BACKENDS, empty_database


@pytest.fixture(params=BACKENDS)
def engine_at_0004(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database at revision 0004 holding one state and one log line."""
    with empty_database(request.param, tmp_path) as url:
        engine = create_db_engine(url)
        try:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), "0004")
                connection.execute(
                    text(
                        "INSERT INTO states (run_id, run_kind, type, name, timestamp) VALUES "
                        "('r', 'flow', 'RUNNING', 'Running', '2026-01-02 03:04:05.000000')"
                    )
                )
                connection.execute(
                    text(
                        "INSERT INTO logs (flow_run_id, level, logger, message, timestamp) "
                        "VALUES ('r', 20, 'l', 'old line', '2026-01-02 03:04:05.000000')"
                    )
                )
            yield engine
        finally:
            engine.dispose()


def test_upgrade_adds_event_ids_and_flows_and_keeps_history(engine_at_0004: Engine) -> None:
    with engine_at_0004.begin() as connection:
        command.upgrade(alembic_config(connection), "0005")
    assert current_revision(engine_at_0004) == "0005"
    assert "flows" in inspect(engine_at_0004).get_table_names()
    with engine_at_0004.begin() as connection:
        assert connection.execute(text("SELECT name, event_id FROM states")).one() == (
            "Running",
            None,
        )
        assert connection.execute(text("SELECT message, event_id FROM logs")).one() == (
            "old line",
            None,
        )
        # Many rows without an id (embedded writes) are fine; one id twice is not.
        for _ in range(2):
            connection.execute(
                text(
                    "INSERT INTO logs (level, logger, message, timestamp) "
                    "VALUES (20, 'l', 'm', '2026-01-02 03:04:05.000000')"
                )
            )
    insert_with_id = text(
        "INSERT INTO logs (level, logger, message, timestamp, event_id) "
        "VALUES (20, 'l', 'm', '2026-01-02 03:04:05.000000', 'e-1')"
    )
    with engine_at_0004.begin() as connection:
        connection.execute(insert_with_id)
    with pytest.raises(IntegrityError), engine_at_0004.begin() as connection:
        connection.execute(insert_with_id)


def test_downgrade_removes_them_and_keeps_history(engine_at_0004: Engine) -> None:
    with engine_at_0004.begin() as connection:
        command.upgrade(alembic_config(connection), "0005")
        command.downgrade(alembic_config(connection), "0004")
    assert current_revision(engine_at_0004) == "0004"
    inspector = inspect(engine_at_0004)
    assert "flows" not in inspector.get_table_names()
    assert "event_id" not in {column["name"] for column in inspector.get_columns("logs")}
    with engine_at_0004.connect() as connection:
        assert connection.execute(text("SELECT message FROM logs")).scalars().all() == ["old line"]


def test_head_matches_tables(engine_at_0004: Engine) -> None:
    with engine_at_0004.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    assert schema_differences(engine_at_0004) == []
