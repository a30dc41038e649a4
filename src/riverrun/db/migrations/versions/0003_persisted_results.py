"""Persisted results: task runs record where their result is; flow runs their entrypoint.

- ``task_runs.task_key`` (the task's module and qualified name) and ``task_runs.result``
  (a JSON reference to the persisted result): a resumed flow run finds the results of
  the calls that already completed.
- ``flow_runs.entrypoint`` (``path/to/file.py:flow`` or ``module:flow``): where
  ``riverrun flow-run retry`` loads the flow from; ``flow_runs.resume_parameters``:
  where its exact parameters are kept when their JSON form is not exact.
- ``cache_entries.task_name``: ``riverrun cache clear --task NAME``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("task_key", sa.String(512), nullable=True))
        batch.add_column(sa.Column("result", sa.Text(), nullable=True))
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("entrypoint", sa.Text(), nullable=True))
        batch.add_column(sa.Column("resume_parameters", sa.Text(), nullable=True))
    with op.batch_alter_table("cache_entries") as batch:
        batch.add_column(sa.Column("task_name", sa.String(255), nullable=True))
    op.create_index("ix_cache_entries_task_name", "cache_entries", ["task_name"])


def downgrade() -> None:
    op.drop_index("ix_cache_entries_task_name", table_name="cache_entries")
    with op.batch_alter_table("cache_entries") as batch:
        batch.drop_column("task_name")
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("resume_parameters")
        batch.drop_column("entrypoint")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("result")
        batch.drop_column("task_key")
