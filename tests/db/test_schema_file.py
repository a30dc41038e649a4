"""``schema_sqlite.sql``: generated from ``tables.py``, equal to what the migrations make,
and what a new SQLite database gets through ``sqlite3``; the column kinds the driver-level
statements convert by name agree with the tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from sqlalchemy import JSON

from riverrun.db import schema_file, statements
from riverrun.db.engine import HEAD_REVISION, create_db_engine
from riverrun.db.sqlite import SCHEMA_FILE, SQLiteDatabase
from riverrun.db.tables import UTCDateTime, flow_runs, metadata, task_runs
from tests.db.test_migrations import alembic_config


def test_the_checked_in_file_is_what_the_generator_makes_now() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_file.render(), (
        f"{SCHEMA_FILE.name} is out of date with tables.py: run `{schema_file.REGENERATE}`"
    )


def _schema(path: Path) -> dict[str, object]:
    """Tables, columns, types, indexes and constraints of a SQLite file, normalised."""
    connection = sqlite3.connect(path)
    try:
        tables = sorted(
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        )
        described: dict[str, object] = {}
        for table in tables:
            columns = sorted(
                (name, kind.upper(), notnull, default, pk)
                for _, name, kind, notnull, default, pk in connection.execute(
                    f'PRAGMA table_info("{table}")'
                )
            )
            indexes = sorted(
                (
                    name,
                    unique,
                    origin,
                    tuple(row[2] for row in connection.execute(f'PRAGMA index_info("{name}")')),
                    # A partial index's predicate (alembic's comparison does not see it).
                    _index_where(connection, name) if partial else None,
                )
                for _, name, unique, origin, partial in connection.execute(
                    f'PRAGMA index_list("{table}")'
                )
            )
            foreign_keys = sorted(connection.execute(f'PRAGMA foreign_key_list("{table}")'))
            described[table] = {
                "columns": columns,
                # SQLite names the indexes of a primary key or UNIQUE constraint itself.
                "indexes": [
                    (name if origin == "c" else origin, unique, origin, names, where)
                    for name, unique, origin, names, where in indexes
                ],
                "foreign_keys": foreign_keys,
            }
        return described
    finally:
        connection.close()


def _index_where(connection: sqlite3.Connection, name: str) -> str:
    [(sql,)] = connection.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
    )
    return " ".join(str(sql).partition(" WHERE ")[2].split())


def test_a_database_created_from_the_file_equals_one_made_by_the_migrations(
    tmp_path: Path,
) -> None:
    from_file = tmp_path / "from_file.db"
    database = SQLiteDatabase(str(from_file))
    database.migrate(f"sqlite:///{from_file}")
    assert database.revision() == HEAD_REVISION
    database.dispose()

    migrated = tmp_path / "migrated.db"
    engine = create_db_engine(f"sqlite:///{migrated}")
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()

    assert _schema(from_file) == _schema(migrated)
    assert set(_schema(from_file)) == {*metadata.tables, "alembic_version"}
    partial = {
        name: where
        for table in _schema(from_file).values()
        for name, _, _, _, where in table["indexes"]  # type: ignore[index]
        if where is not None
    }
    assert partial == {
        "ix_logs_event_id": "event_id IS NOT NULL",
        "ix_states_event_id": "event_id IS NOT NULL",
    }


def test_statements_convert_exactly_the_timestamp_and_json_columns() -> None:
    timestamps = {
        column.name
        for table in metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, UTCDateTime)
    }
    json_columns = {
        column.name
        for table in metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, JSON)
    }
    others = {
        column.name
        for table in metadata.tables.values()
        for column in table.columns
        if not isinstance(column.type, UTCDateTime | JSON)
    }
    assert timestamps == statements.TIMESTAMP_COLUMNS
    assert json_columns == statements.JSON_COLUMNS
    # Conversion goes by name: a name must mean the same kind in every table.
    assert not (timestamps | json_columns) & others


def test_the_run_columns_read_back_are_the_tables_columns() -> None:
    assert set(statements.FLOW_RUN_COLUMNS) == set(flow_runs.columns.keys())
    assert set(statements.TASK_RUN_COLUMNS) == set(task_runs.columns.keys())
