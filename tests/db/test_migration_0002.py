"""Revision 0002 (flow run host, pid and heartbeat) keeps existing runs both ways.

Runs on a SQLite file and on a fresh PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from riverrun.db.engine import HEAD_REVISION, create_db_engine, current_revision
from tests.db.test_migrations import alembic_config, schema_differences
from tests.postgres import BACKENDS, empty_database


@pytest.fixture(params=BACKENDS)
def engine_at_0001(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database at revision 0001 holding one running flow run."""
    with empty_database(request.param, tmp_path) as url:
        engine = create_db_engine(url)
        try:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), "0001")
                connection.execute(
                    text(
                        "INSERT INTO flow_runs (id, name, flow_name, state_type, state_name, "
                        "parameters, tags, run_count, created) VALUES ('old-run', 'old', "
                        "'old-flow', 'RUNNING', 'Running', '{}', '[]', 1, "
                        "'2026-01-02 03:04:05.000000')"
                    )
                )
            yield engine
        finally:
            engine.dispose()


def flow_run_columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("flow_runs")}


def flow_run_indexes(engine: Engine) -> set[str | None]:
    return {index["name"] for index in inspect(engine).get_indexes("flow_runs")}


def test_upgrade_adds_the_columns_and_index_and_keeps_runs(engine_at_0001: Engine) -> None:
    with engine_at_0001.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    assert current_revision(engine_at_0001) == HEAD_REVISION
    assert schema_differences(engine_at_0001) == []
    assert {"hostname", "pid", "heartbeat"} <= flow_run_columns(engine_at_0001)
    assert "ix_flow_runs_state_type" in flow_run_indexes(engine_at_0001)
    with engine_at_0001.connect() as connection:
        row = connection.execute(
            text("SELECT name, state_name, hostname, pid, heartbeat FROM flow_runs")
        ).one()
    assert tuple(row) == ("old", "Running", None, None, None)


def test_downgrade_removes_them_and_keeps_runs(engine_at_0001: Engine) -> None:
    with engine_at_0001.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
        connection.execute(text("UPDATE flow_runs SET hostname = 'h', pid = 7"))
        command.downgrade(alembic_config(connection), "0001")
    assert current_revision(engine_at_0001) == "0001"
    assert not {"hostname", "pid", "heartbeat"} & flow_run_columns(engine_at_0001)
    assert flow_run_indexes(engine_at_0001) == {
        "ix_flow_runs_created",
        "ix_flow_runs_flow_name",
        "ix_flow_runs_parent_flow_run_id",
    }
    with engine_at_0001.connect() as connection:
        assert connection.execute(text("SELECT id FROM flow_runs")).scalars().all() == ["old-run"]
