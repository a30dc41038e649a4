"""Database: SQLAlchemy Core tables, the Alembic migration tree, engine set-up, and the
run path's statements for ``sqlite3``.

Invariants:
- One migration tree (``migrations/``) creates the schema on SQLite and PostgreSQL
  alike; ``tables.py`` mirrors the head revision and a test compares the two.
- SQLite runs in WAL mode with a long busy timeout, and every write transaction starts
  with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the lock instead of
  failing with ``database is locked`` when a read transaction tries to upgrade.
- Migrations run once per process per database, under a file lock (SQLite) or an
  advisory lock (PostgreSQL), so many processes starting at once on a fresh home
  never race to create tables; Alembic is only imported when the schema is behind.
- Every statement is written once. The run path's (creating a flow run, the
  write-behind batches, heartbeats, cache entries, limit names, resuming) are
  driver-level SQL in ``statements.py``, sent through ``sqlite3`` (``sqlite.py``: a
  flow's process on a SQLite file never imports SQLAlchemy) or through a SQLAlchemy
  connection (PostgreSQL, the server); the rest are SQLAlchemy Core in
  ``repository.py``, ``history.py``, ``liveness.py`` and ``concurrency.py``.
- The write-behind path is lean: ``rows.py`` (the rows' columns, conversions and
  statements; ``statements.py`` re-exports them), ``write_behind.py`` (events to rows,
  committed in one transaction with a writer's mark, kept when the database is
  unavailable, one by one when refused: the one commit logic of the store and its
  writer process) and ``writer_child.py`` (the writer process's side) import only the
  standard library and each other, with ``sqlite.py``, so that a writer process for a
  SQLite file starts without settings, records, ``typing`` or ``logging``
  (``tests/db/test_writer_child.py`` keeps it so).
- ``schema_sqlite.sql`` is generated from ``tables.py`` (``python -m
  riverrun.db.schema_file``); a test fails when it is out of date.
"""
