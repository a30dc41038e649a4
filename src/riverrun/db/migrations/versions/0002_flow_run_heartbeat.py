"""Flow runs record their process (host and pid) and heartbeat; state_type is indexed.

Crashed-run detection reads these: a run whose process is gone, or whose heartbeat
stopped, is marked Crashed. The index serves its search for unfinished runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: plain ALTER TABLE on PostgreSQL, and on SQLite too for added columns.
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("hostname", sa.String(255), nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("heartbeat", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_flow_runs_state_type", "flow_runs", ["state_type"])


def downgrade() -> None:
    op.drop_index("ix_flow_runs_state_type", table_name="flow_runs")
    # SQLite drops columns by copying the table (batch mode keeps its other indexes).
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("heartbeat")
        batch.drop_column("pid")
        batch.drop_column("hostname")
