"""``writer_marks``: the last batch each writer process committed.

A writer process commits the batches its parent hands it and confirms each over a pipe.
If it dies after a COMMIT but before the confirmation, the parent used to write that
batch again. Each transaction now also sets the writer's mark, so the parent reads
which batches are in and writes only the others.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "writer_marks",
        sa.Column("writer", sa.String(255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("writer", name="pk_writer_marks"),
    )


def downgrade() -> None:
    op.drop_table("writer_marks")
