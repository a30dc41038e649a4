"""Revision 0003 (persisted-result columns) keeps existing runs and entries both ways.

Runs on a SQLite file and on a fresh PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from riverrun.db.engine import create_db_engine, current_revision
from tests.db.test_migrations import alembic_config, schema_differences
from tests.postgres import BACKENDS, empty_database


@pytest.fixture(params=BACKENDS)
def engine_at_0002(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database at revision 0002 holding one task run and one cache entry."""
    with empty_database(request.param, tmp_path) as url:
        engine = create_db_engine(url)
        try:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), "0002")
                connection.execute(
                    text(
                        "INSERT INTO task_runs (id, flow_run_id, name, task_name, dynamic_key, "
                        "tags, run_count, upstream_task_run_ids, created) VALUES ('old-task', "
                        "'old-flow-run', 'old-1', 'old', 0, '[]', 1, '[]', "
                        "'2026-01-02 03:04:05.000000')"
                    )
                )
                connection.execute(
                    text(
                        "INSERT INTO cache_entries (key, location, created) VALUES "
                        "('k', 'abc', '2026-01-02 03:04:05.000000')"
                    )
                )
            yield engine
        finally:
            engine.dispose()


def columns(engine: Engine, table: str) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns(table)}


def test_upgrade_adds_the_columns_and_keeps_rows(engine_at_0002: Engine) -> None:
    with engine_at_0002.begin() as connection:
        command.upgrade(alembic_config(connection), "0003")
    assert current_revision(engine_at_0002) == "0003"
    assert {"task_key", "result"} <= columns(engine_at_0002, "task_runs")
    assert "entrypoint" in columns(engine_at_0002, "flow_runs")
    assert "task_name" in columns(engine_at_0002, "cache_entries")
    with engine_at_0002.connect() as connection:
        task = connection.execute(text("SELECT name, task_key, result FROM task_runs")).one()
        entry = connection.execute(text("SELECT key, task_name FROM cache_entries")).one()
    assert tuple(task) == ("old-1", None, None)
    assert tuple(entry) == ("k", None)


def test_head_schema_matches_the_tables(engine_at_0002: Engine) -> None:
    with engine_at_0002.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    assert schema_differences(engine_at_0002) == []


def test_downgrade_removes_them_and_keeps_rows(engine_at_0002: Engine) -> None:
    with engine_at_0002.begin() as connection:
        command.upgrade(alembic_config(connection), "0003")
        connection.execute(text("UPDATE task_runs SET task_key = 'm.t', result = '{}'"))
        command.downgrade(alembic_config(connection), "0002")
    assert current_revision(engine_at_0002) == "0002"
    assert not {"task_key", "result"} & columns(engine_at_0002, "task_runs")
    assert "task_name" not in columns(engine_at_0002, "cache_entries")
    with engine_at_0002.connect() as connection:
        assert connection.execute(text("SELECT id FROM task_runs")).scalars().all() == ["old-task"]
        assert connection.execute(text("SELECT key FROM cache_entries")).scalars().all() == ["k"]
