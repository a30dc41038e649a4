"""Write ``schema_sqlite.sql``: the SQLite schema at the head revision, from ``tables.py``.

The embedded store creates a new SQLite database from that file through ``sqlite3``
(``db/sqlite.py``), without importing SQLAlchemy. Run this after changing ``tables.py``
(a test fails until the file is regenerated)::

    python -m riverrun.db.schema_file
"""

from __future__ import annotations

from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from riverrun.db.engine import ALEMBIC_VERSION_DDL
from riverrun.db.sqlite import SCHEMA_FILE
from riverrun.db.tables import metadata

__all__ = ["REGENERATE", "render"]

REGENERATE = "python -m riverrun.db.schema_file"

_HEADER = f"""\
-- The SQLite schema at the head revision, generated from riverrun/db/tables.py.
-- Do not edit: regenerate with `{REGENERATE}`.
"""


def render() -> str:
    """The file's text: one statement per paragraph, each ending with ``;``."""
    dialect = sqlite.dialect()
    statements = []
    for table in metadata.sorted_tables:
        statements.append(_tidy(CreateTable(table).compile(dialect=dialect)))
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            statements.append(_tidy(CreateIndex(index).compile(dialect=dialect)))
    statements.append(ALEMBIC_VERSION_DDL)
    return _HEADER + "".join(f"\n{statement};\n" for statement in statements)


def _tidy(compiled: object) -> str:
    lines = str(compiled).strip().splitlines()
    return "\n".join(line.rstrip().replace("\t", "    ") for line in lines)


def main() -> None:
    SCHEMA_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
