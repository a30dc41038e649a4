"""Engine set-up and schema migration for SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, ProgrammingError

from riverrun.db import sqlite
from riverrun.db.sqlite import HEAD_REVISION

__all__ = [
    "ALEMBIC_VERSION_DDL",
    "HEAD_REVISION",
    "create_db_engine",
    "migrate",
    "redacted",
    "write_connection",
]

# The table Alembic itself keeps, as a database created at the head gets it.
ALEMBIC_VERSION_DDL = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)
_READ_OPTION = "riverrun_read"
# PostgreSQL advisory lock held while migrating (any constant unique to riverrun).
_MIGRATION_LOCK_KEY = 726_175_001


def redacted(url: str | URL) -> str:
    """The URL with any password hidden, safe to log or show."""
    return make_url(url).render_as_string(hide_password=True)


def _normalise(url: str) -> URL:
    parsed = make_url(url)
    # "postgresql://" means psycopg 3 here; SQLAlchemy's default would be psycopg2.
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_db_engine(url: str) -> Engine:
    """Create an engine for ``url`` (``sqlite:///path`` or ``postgresql://…``)."""
    parsed = _normalise(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend != "postgresql":
        raise ValueError(f"unsupported database {backend!r}: use sqlite:///path or postgresql://…")
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    if not database or database == ":memory:":
        raise ValueError(
            f"riverrun needs a SQLite file, not {redacted(url)!r}: runs are shared "
            "between processes through it"
        )
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": sqlite.BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        sqlite.configure(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # Transactions begin as in sqlite.py, which explains why writes are IMMEDIATE.
        if connection.get_execution_options().get(_READ_OPTION):
            connection.exec_driver_sql(sqlite.BEGIN_READ)
        else:
            connection.exec_driver_sql(sqlite.BEGIN_WRITE)

    return engine


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only (on SQLite it does not take the write lock)."""
    with engine.connect() as connection:
        connection.execution_options(**{_READ_OPTION: True})
        with connection.begin():
            yield connection


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one write transaction, committed on leaving the block."""
    with engine.begin() as connection:
        yield connection


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the database, or ``None`` when it has none yet."""
    try:
        with read_connection(engine) as connection:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    except (OperationalError, ProgrammingError):
        return None
    return None if row is None else str(row[0])


def migrate(engine: Engine) -> None:
    """Bring the schema to ``HEAD_REVISION``.

    Without Alembic where that is possible: a database already at the head is left
    alone, and an empty one gets the tables of ``tables.py`` (which a test keeps equal
    to the migrations' result) stamped with the head revision — importing and running
    Alembic costs more than a first flow run should. An older schema is upgraded by
    Alembic.
    """
    if current_revision(engine) == HEAD_REVISION:
        return
    with _migration_lock(engine) as connection:
        revision = _revision_in(connection)
        if revision == HEAD_REVISION:
            return  # another process migrated while we waited for the lock
        if revision is None and not _has_riverrun_tables(connection):
            _create_at_head(connection)
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _revision_in(connection: Connection) -> str | None:
    if "alembic_version" not in _table_names(connection):
        return None
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def _table_names(connection: Connection) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(connection).get_table_names())


def _has_riverrun_tables(connection: Connection) -> bool:
    from riverrun.db.tables import metadata

    return bool(_table_names(connection) & set(metadata.tables))


def _create_at_head(connection: Connection) -> None:
    from riverrun.db.tables import metadata

    metadata.create_all(connection)
    # The table Alembic itself keeps, so later upgrades start from here.
    connection.execute(text(ALEMBIC_VERSION_DDL.replace("TABLE", "TABLE IF NOT EXISTS", 1)))
    connection.execute(text("DELETE FROM alembic_version"))
    connection.execute(
        text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": HEAD_REVISION}
    )


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        assert database is not None
        lock_path = Path(f"{database}.migrate.lock")
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with engine.begin() as connection:
                    yield connection
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    with engine.begin() as connection:
        # Held until this transaction ends, so only one process migrates at a time.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        yield connection
