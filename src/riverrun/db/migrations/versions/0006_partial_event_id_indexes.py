"""The unique indexes on states' and logs' ``event_id`` are partial: non-NULL ids only.

Only events a client reports over HTTP carry an id (0005); the embedded store writes
NULL for every state and log, and each of those rows cost an insert into an index that
no lookup by id can ever find it through. A lookup by ``event_id = ?`` or
``event_id IN (...)`` implies ``event_id IS NOT NULL``, so it still uses the index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("states", "logs")


def upgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_event_id", table_name=table)
        op.create_index(
            f"ix_{table}_event_id",
            table,
            ["event_id"],
            unique=True,
            sqlite_where=sa.text("event_id IS NOT NULL"),
            postgresql_where=sa.text("event_id IS NOT NULL"),
        )


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_event_id", table_name=table)
        op.create_index(f"ix_{table}_event_id", table, ["event_id"], unique=True)
