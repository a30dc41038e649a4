"""Initial schema: flow runs, task runs, states, logs, cache entries.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("flow_name", sa.String(255), nullable=False),
        sa.Column("state_type", sa.String(16)),
        sa.Column("state_name", sa.String(32)),
        sa.Column("state_message", sa.Text()),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("parent_flow_run_id", sa.String(36)),
        sa.Column("parent_task_run_id", sa.String(36)),
        sa.Column("run_count", sa.Integer(), nullable=False),
        _ts("created", nullable=False),
        _ts("start_time"),
        _ts("end_time"),
        sa.PrimaryKeyConstraint("id", name="pk_flow_runs"),
    )
    op.create_index("ix_flow_runs_created", "flow_runs", ["created"])
    op.create_index("ix_flow_runs_flow_name", "flow_runs", ["flow_name"])
    op.create_index("ix_flow_runs_parent_flow_run_id", "flow_runs", ["parent_flow_run_id"])

    op.create_table(
        "task_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("flow_run_id", sa.String(36)),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("dynamic_key", sa.Integer(), nullable=False),
        sa.Column("state_type", sa.String(16)),
        sa.Column("state_name", sa.String(32)),
        sa.Column("state_message", sa.Text()),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(255)),
        sa.Column("upstream_task_run_ids", sa.JSON(), nullable=False),
        sa.Column("subflow_run_id", sa.String(36)),
        _ts("created", nullable=False),
        _ts("start_time"),
        _ts("end_time"),
        sa.PrimaryKeyConstraint("id", name="pk_task_runs"),
    )
    op.create_index("ix_task_runs_flow_run_id", "task_runs", ["flow_run_id"])

    op.create_table(
        "states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("run_kind", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("message", sa.Text()),
        _ts("timestamp", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_states"),
    )
    op.create_index("ix_states_run_id", "states", ["run_id"])

    op.create_table(
        "logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flow_run_id", sa.String(36)),
        sa.Column("task_run_id", sa.String(36)),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("logger", sa.String(255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _ts("timestamp", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_logs"),
    )
    op.create_index("ix_logs_flow_run_id", "logs", ["flow_run_id"])

    op.create_table(
        "cache_entries",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        _ts("expiration"),
        _ts("created", nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_cache_entries"),
    )


def downgrade() -> None:
    op.drop_table("cache_entries")
    op.drop_index("ix_logs_flow_run_id", table_name="logs")
    op.drop_table("logs")
    op.drop_index("ix_states_run_id", table_name="states")
    op.drop_table("states")
    op.drop_index("ix_task_runs_flow_run_id", table_name="task_runs")
    op.drop_table("task_runs")
    op.drop_index("ix_flow_runs_parent_flow_run_id", table_name="flow_runs")
    op.drop_index("ix_flow_runs_flow_name", table_name="flow_runs")
    op.drop_index("ix_flow_runs_created", table_name="flow_runs")
    op.drop_table("flow_runs")
