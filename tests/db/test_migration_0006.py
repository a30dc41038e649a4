"""Revision 0006 (the unique ``event_id`` indexes only hold rows that have an id) keeps
history and uniqueness both ways, and the lookup by event id still uses the indexes, on a
SQLite file and on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import IntegrityError

from riverrun.db.engine import create_db_engine, current_revision
from riverrun.db.tables import logs, states
from tests.db.test_migrations import alembic_config, schema_differences
from tests.postgres import BACKENDS, empty_database

_INDEXES = {"states": "ix_states_event_id", "logs": "ix_logs_event_id"}

_INSERT_STATE = (
    "INSERT INTO states (run_id, run_kind, type, name, timestamp, event_id) VALUES "
    "('r', 'flow', 'RUNNING', 'Running', '2026-01-02 03:04:05.000000', {event_id})"
)
_INSERT_LOG = (
    "INSERT INTO logs (flow_run_id, level, logger, message, timestamp, event_id) "
    "VALUES ('r', 20, 'l', 'old line', '2026-01-02 03:04:05.000000', {event_id})"
)


@pytest.fixture(params=BACKENDS)
def engine_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database at revision 0005 holding states and logs with and without event ids."""
    with empty_database(request.param, tmp_path) as url:
        engine = create_db_engine(url)
        try:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), "0005")
                for event_id in ("NULL", "NULL", "'e-1'"):
                    connection.execute(text(_INSERT_STATE.format(event_id=event_id)))
                    connection.execute(text(_INSERT_LOG.format(event_id=event_id)))
            yield engine
        finally:
            engine.dispose()


def index_definitions(connection: Connection) -> dict[str, tuple[bool, str | None]]:
    """The event id indexes: (unique, partial index predicate or None), by table."""
    found: dict[str, tuple[bool, str | None]] = {}
    for table, index in _INDEXES.items():
        if connection.dialect.name == "sqlite":
            [sql] = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
                {"name": index},
            ).scalars()
        else:
            [sql] = connection.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"), {"name": index}
            ).scalars()
        assert "(event_id)" in sql and f" {table} " in sql.replace("public.", " "), sql
        _, where, predicate = sql.partition(" WHERE ")
        found[table] = ("UNIQUE" in sql.upper(), predicate.strip("()") if where else None)
    return found


def assert_history_and_uniqueness_kept(engine: Engine) -> None:
    with engine.connect() as connection:
        for table in _INDEXES:
            kept = connection.execute(text(f"SELECT event_id FROM {table} ORDER BY id"))
            assert kept.scalars().all() == [None, None, "e-1"]
    for insert in (_INSERT_STATE, _INSERT_LOG):
        with engine.begin() as connection:  # rows without an id: any number of them
            connection.execute(text(insert.format(event_id="NULL")))
            connection.execute(text(insert.format(event_id="'e-2'")))
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(insert.format(event_id="'e-1'")))


def test_upgrade_makes_the_indexes_partial_and_keeps_history(engine_at_0005: Engine) -> None:
    with engine_at_0005.begin() as connection:
        assert set(index_definitions(connection).values()) == {(True, None)}
        command.upgrade(alembic_config(connection), "0006")
    assert current_revision(engine_at_0005) == "0006"
    with engine_at_0005.connect() as connection:
        assert set(index_definitions(connection).values()) == {(True, "event_id IS NOT NULL")}
    with engine_at_0005.begin() as connection:  # the later revisions, to compare with tables
        command.upgrade(alembic_config(connection), "head")
    assert schema_differences(engine_at_0005) == []
    assert_history_and_uniqueness_kept(engine_at_0005)


def test_downgrade_makes_them_whole_again_and_keeps_history(engine_at_0005: Engine) -> None:
    with engine_at_0005.begin() as connection:
        command.upgrade(alembic_config(connection), "0006")
        command.downgrade(alembic_config(connection), "0005")
    assert current_revision(engine_at_0005) == "0005"
    with engine_at_0005.connect() as connection:
        assert set(index_definitions(connection).values()) == {(True, None)}
    assert_history_and_uniqueness_kept(engine_at_0005)


@pytest.mark.parametrize("ids", [["e-1"], ["e-1", "e-2", "e-3"]], ids=["one", "three"])
def test_the_lookup_by_event_id_uses_the_partial_index(
    engine_at_0005: Engine, ids: list[str]
) -> None:
    with engine_at_0005.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    with engine_at_0005.begin() as connection:
        for table in (states, logs):
            # The query db/history.py's apply_events makes to find repeats.
            query = select(table.c.event_id).where(table.c.event_id.in_(ids))
            sql = str(
                query.compile(
                    dialect=connection.dialect,
                    compile_kwargs={"literal_binds": True, "render_postcompile": True},
                )
            )
            if connection.dialect.name == "sqlite":
                plan = " ".join(
                    str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert f"INDEX ix_{table.name}_event_id" in plan, plan
            else:
                # A handful of rows is a sequential scan's job: ask whether it can use it.
                connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
                plan = " ".join(str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))
                assert f"ix_{table.name}_event_id" in plan, plan
            assert connection.execute(query).scalars().all() == ["e-1"]
