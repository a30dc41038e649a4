"""Concurrency limits: the limits, the leases holding their slots, and their waiters.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "concurrency_limits",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("slot_limit", sa.Integer(), nullable=False),
        sa.Column("slot_decay_per_second", sa.Float(), nullable=False),
        sa.Column("rate_empty_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_concurrency_limits"),
    )
    op.create_table(
        "concurrency_leases",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("limit_name", sa.String(255), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(36), nullable=True),
        sa.Column("task_run_id", sa.String(36), nullable=True),
        sa.Column("hostname", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("expiration", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", "limit_name", name="pk_concurrency_leases"),
    )
    op.create_index("ix_concurrency_leases_limit_name", "concurrency_leases", ["limit_name"])
    op.create_table(
        "concurrency_waiters",
        sa.Column("ticket", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("limit_name", sa.String(255), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("expiration", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticket", "limit_name", name="pk_concurrency_waiters"),
    )
    op.create_index("ix_concurrency_waiters_limit_name", "concurrency_waiters", ["limit_name"])


def downgrade() -> None:
    op.drop_index("ix_concurrency_waiters_limit_name", table_name="concurrency_waiters")
    op.drop_table("concurrency_waiters")
    op.drop_index("ix_concurrency_leases_limit_name", table_name="concurrency_leases")
    op.drop_table("concurrency_leases")
    op.drop_table("concurrency_limits")
