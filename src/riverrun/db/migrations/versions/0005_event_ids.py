"""States and logs carry the id their client gave them; flows are recorded by name.

The HTTP store retries and spools events while a server is unreachable, so one event
may arrive twice; its client-made id, unique here, lets the server ignore the repeat.
Events written by the embedded store have none (NULL, which a unique index allows
many times). ``POST /api/flows/`` records a flow once per name.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("states") as batch:
        batch.add_column(sa.Column("event_id", sa.String(36), nullable=True))
    op.create_index("ix_states_event_id", "states", ["event_id"], unique=True)
    with op.batch_alter_table("logs") as batch:
        batch.add_column(sa.Column("event_id", sa.String(36), nullable=True))
    op.create_index("ix_logs_event_id", "logs", ["event_id"], unique=True)
    op.create_table(
        "flows",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flows"),
    )
    op.create_index("ix_flows_name", "flows", ["name"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_flows_name", table_name="flows")
    op.drop_table("flows")
    op.drop_index("ix_logs_event_id", table_name="logs")
    with op.batch_alter_table("logs") as batch:
        batch.drop_column("event_id")
    op.drop_index("ix_states_event_id", table_name="states")
    with op.batch_alter_table("states") as batch:
        batch.drop_column("event_id")
