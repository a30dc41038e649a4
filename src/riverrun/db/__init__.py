"""Database: SQLAlchemy Core tables, the Alembic migration tree, engine set-up.

Invariants:
- One migration tree (``migrations/``) creates the schema on SQLite and PostgreSQL
  alike; ``tables.py`` mirrors the head revision and a test compares the two.
- SQLite runs in WAL mode with a long busy timeout, and every write transaction starts
  with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the lock instead of
  failing with ``database is locked`` when a read transaction tries to upgrade.
- Migrations run once per process per database, under a file lock (SQLite) or an
  advisory lock (PostgreSQL), so many processes starting at once on a fresh home
  never race to create tables; Alembic is only imported when the schema is behind.
- ``repository.py`` holds every query; the embedded store (and later the server) call
  it, nothing else writes SQL.
"""
