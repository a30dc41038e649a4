"""SQLite through the stdlib ``sqlite3`` module: the run path without SQLAlchemy.

Importing SQLAlchemy costs a flow's process more than a short flow run itself, so the
embedded store records runs in a SQLite file through ``sqlite3`` directly and opens a
SQLAlchemy engine only for what is off the run path (listings, concurrency slots).

Invariants, shared with the SQLAlchemy engine (``engine.py`` configures its connections
with ``configure`` below):

- Every connection: ``busy_timeout`` 60 s, WAL, ``synchronous=NORMAL``, and transaction
  control taken away from the driver (``isolation_level=None``). Writes begin with
  ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes cannot wait for
  the lock in WAL mode (``SQLITE_BUSY`` at once), an immediate one waits its turn under
  the busy timeout. Reads begin with a plain ``BEGIN``.
- Connections are pooled and usable from any thread, one transaction at a time each.
- A new database gets the schema of ``schema_sqlite.sql`` (generated from ``tables.py``
  by ``python -m riverrun.db.schema_file``), stamped with ``HEAD_REVISION``, under the
  same ``<db>.migrate.lock`` file lock as ``engine.migrate``. Any other schema but the
  head goes to ``engine.migrate`` (Alembic), which SQLAlchemy is then imported for.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from _thread import allocate_lock
from contextlib import contextmanager

from riverrun.db.rows import SQLITE, Dialect

# A writer process imports this module: ``typing`` and ``pathlib`` are not imported at
# run time (see rows.py). mypy takes this name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path
    from typing import Any

    SCHEMA_FILE: Path

__all__ = [
    "BEGIN_READ",
    "BEGIN_WRITE",
    "BUSY_TIMEOUT_MS",
    "HEAD_REVISION",
    "SCHEMA_FILE",
    "SQLiteDatabase",
    "bind_none_directly",
    "configure",
    "sqlite_path",
]

# The newest revision in migrations/versions; a test keeps it equal to Alembic's head.
HEAD_REVISION = "0007"

BUSY_TIMEOUT_MS = 60_000
BEGIN_WRITE = "BEGIN IMMEDIATE"
BEGIN_READ = "BEGIN"


def bind_none_directly() -> None:
    """Register an adapter for ``None`` (unless the program has its own): the cheap way
    for ``sqlite3`` to bind it.

    ``sqlite3`` binds ``str``, ``int`` and ``float`` as they are, and passes every other
    value, ``None`` included, through its adaptation protocol. With no adapter
    registered for ``NoneType``, that protocol looks up ``PrepareProtocol.__adapt__``,
    whose absence raises and formats an AttributeError inside the driver, then drops
    it: about 2,000 instructions per ``None`` (0.2-0.3 µs), and a task run's rows bind
    about eleven. With the adapter the first lookup finds it; ``{}.get`` returns ``None``
    for ``None`` (a call in C), which binds as NULL as before. Module-wide, as
    ``sqlite3``'s adapters are; a value other than ``None`` never reaches it.
    """
    key = (type(None), sqlite3.PrepareProtocol)
    if key not in getattr(sqlite3, "adapters", {}):
        sqlite3.register_adapter(type(None), _NULL)


_NULL: Any = {}.get
bind_none_directly()

_SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "schema_sqlite.sql")

# Idle connections kept open for the next transaction (the rest are closed).
_POOL_SIZE = 5
# Connections a forked child inherited: never closed there, as closing one could touch
# the parent's locks and write-ahead log (kept referenced so that no finaliser does).
_abandoned: list[sqlite3.Connection] = []


def __getattr__(name: str) -> Path:
    # ``SCHEMA_FILE``, made when first asked for (see TYPE_CHECKING above).
    if name == "SCHEMA_FILE":
        from pathlib import Path

        return Path(_SCHEMA_PATH)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def configure(connection: sqlite3.Connection) -> None:
    """Set up a new connection (for ``sqlite3`` here and for SQLAlchemy's engine)."""
    connection.isolation_level = None
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


def sqlite_path(url: str) -> str | None:
    """The file of a plain ``sqlite:///path`` URL; ``None`` for any other URL (those,
    and in-memory or empty paths, are left to SQLAlchemy, which explains what is wrong)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix) :]
    if not path or path == ":memory:" or any(mark in path for mark in "?%#"):
        return None
    return path


class _Driver:
    """One ``sqlite3`` connection in a transaction, as ``statements.Driver``."""

    __slots__ = ("_connection",)

    dialect: Dialect = SQLITE

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> int:
        if len(rows) == 1:
            return self._connection.execute(statement, rows[0]).rowcount
        return self._connection.executemany(statement, rows).rowcount

    def query(self, statement: str, parameters: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return self._connection.execute(statement, parameters).fetchall()


class SQLiteDatabase:
    """A SQLite file: pooled ``sqlite3`` connections and the run path's transactions."""

    def __init__(self, path: str) -> None:
        # Absolute once, as SQLAlchemy's engine makes it: a flow changing the working
        # folder must not send later connections to another file.
        self.path = os.path.abspath(path)
        folder = os.path.dirname(os.path.expanduser(path))
        if folder:
            os.makedirs(folder, exist_ok=True)
        self._idle: list[sqlite3.Connection] = []
        self._lock = allocate_lock()

    @contextmanager
    def write(self) -> Iterator[_Driver]:
        """A write transaction, committed on leaving the block."""
        with self._transaction(BEGIN_WRITE) as connection:
            yield _Driver(connection)

    @contextmanager
    def read(self) -> Iterator[_Driver]:
        """A read transaction (it does not take the write lock)."""
        with self._transaction(BEGIN_READ) as connection:
            yield _Driver(connection)

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        connection = self._checkout()
        try:
            connection.execute(begin)
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            self._release(connection, broken=not _rolled_back(connection))
            raise
        self._release(connection, broken=False)

    def _checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        connection = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            configure(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _release(self, connection: sqlite3.Connection, *, broken: bool) -> None:
        if not broken:
            with self._lock:
                if len(self._idle) < _POOL_SIZE:
                    self._idle.append(connection)
                    return
        connection.close()

    def dispose(self) -> None:
        """Close the idle connections (the store is closing)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def after_fork_in_child(self) -> None:
        """Let go of the parent's connections without closing them (see ``_abandoned``)."""
        _abandoned.extend(self._idle)
        self._idle = []
        self._lock = allocate_lock()

    # -- schema -----------------------------------------------------------------------

    def revision(self) -> str | None:
        """The schema revision, or ``None`` when the database has none yet."""
        try:
            with self.read() as driver:
                rows = driver.query("SELECT version_num FROM alembic_version")
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):
                raise
            return None
        return str(rows[0][0]) if rows else None

    def migrate(self, url: str) -> None:
        """Bring the schema to ``HEAD_REVISION`` (see the module's docstring)."""
        if self.revision() == HEAD_REVISION:
            return
        with open(f"{self.path}.migrate.lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                if self._create_at_head():
                    return
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        # An older schema (or one that is not riverrun's): Alembic decides, under the
        # same lock, which it takes itself.
        from riverrun.db.engine import create_db_engine, migrate

        engine = create_db_engine(url)
        try:
            migrate(engine)
        finally:
            engine.dispose()

    def _create_at_head(self) -> bool:
        """Create the schema if the database is empty; whether it is at the head now."""
        with open(_SCHEMA_PATH, encoding="utf-8") as schema:
            lines = schema.read().splitlines(keepends=True)
        script = "".join(line for line in lines if not line.startswith("--"))
        statements = [part.strip() for part in script.split(";\n") if part.strip()]
        with self._transaction(BEGIN_WRITE) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            if "alembic_version" in tables:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
                return row is not None and row[0] == HEAD_REVISION
            if tables & set(_created_tables(statements)):
                return False
            for statement in statements:
                connection.execute(statement)
            connection.execute("DELETE FROM alembic_version")
            connection.execute(
                "INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD_REVISION,)
            )
        return True


def _created_tables(statements: list[str]) -> list[str]:
    names = []
    for statement in statements:
        words = statement.split(None, 3)
        if [word.upper() for word in words[:2]] == ["CREATE", "TABLE"]:
            names.append(words[2].strip('"'))
    return names


def _rolled_back(connection: sqlite3.Connection) -> bool:
    """Roll back what a failed transaction left open; whether the connection is fit
    for the next one."""
    try:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
    except sqlite3.Error:
        return False
    return True
