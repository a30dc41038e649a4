"""The schema, as SQLAlchemy Core tables (mirrors the head migration)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)

__all__ = [
    "cache_entries",
    "concurrency_leases",
    "concurrency_limits",
    "concurrency_waiters",
    "flow_runs",
    "flows",
    "logs",
    "metadata",
    "states",
    "task_runs",
    "writer_marks",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC on every backend.

    SQLite keeps only the wall-clock digits of a ``DateTime``, dropping the offset; so
    values are converted to UTC on the way in and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: riverrun stores aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timestamp(name: str, *, nullable: bool = True) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


def _event_id_index(table_name: str) -> Index:
    """Unique event ids, indexed only where there is one (0006).

    Only events reported over HTTP carry an id; the embedded store writes NULL, and a
    row that is not in the index costs no B-tree insert. A lookup by ``event_id = ?`` or
    ``event_id IN (...)`` implies ``event_id IS NOT NULL``, so it still uses the index.
    """
    partial = text("event_id IS NOT NULL")
    return Index(
        f"ix_{table_name}_event_id",
        "event_id",
        unique=True,
        sqlite_where=partial,
        postgresql_where=partial,
    )


flow_runs = Table(
    "flow_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("flow_name", String(255), nullable=False),
    Column("state_type", String(16)),
    Column("state_name", String(32)),
    Column("state_message", Text),
    Column("parameters", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("parent_flow_run_id", String(36)),
    Column("parent_task_run_id", String(36)),
    Column("run_count", Integer, nullable=False),
    _timestamp("created", nullable=False),
    _timestamp("start_time"),
    _timestamp("end_time"),
    # The process running the flow run, and when it last said it was alive (0002).
    Column("hostname", String(255)),
    Column("pid", Integer),
    _timestamp("heartbeat"),
    # Where the flow is loaded from to resume the run (0003).
    Column("entrypoint", Text),
    Column("resume_parameters", Text),
    Index("ix_flow_runs_created", "created"),
    Index("ix_flow_runs_flow_name", "flow_name"),
    Index("ix_flow_runs_parent_flow_run_id", "parent_flow_run_id"),
    Index("ix_flow_runs_state_type", "state_type"),
)

task_runs = Table(
    "task_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("flow_run_id", String(36)),
    Column("name", String(255), nullable=False),
    Column("task_name", String(255), nullable=False),
    Column("dynamic_key", Integer, nullable=False),
    Column("state_type", String(16)),
    Column("state_name", String(32)),
    Column("state_message", Text),
    Column("tags", JSON, nullable=False),
    Column("run_count", Integer, nullable=False),
    Column("cache_key", String(255)),
    Column("upstream_task_run_ids", JSON, nullable=False),
    Column("subflow_run_id", String(36)),
    _timestamp("created", nullable=False),
    _timestamp("start_time"),
    _timestamp("end_time"),
    # The task's identity and its persisted result's reference, for resuming (0003).
    Column("task_key", String(512)),
    Column("result", Text),
    Index("ix_task_runs_flow_run_id", "flow_run_id"),
)

states = Table(
    "states",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("run_kind", String(8), nullable=False),
    Column("type", String(16), nullable=False),
    Column("name", String(32), nullable=False),
    Column("message", Text),
    _timestamp("timestamp", nullable=False),
    # The id a client gave the event, so a repeat delivery is ignored (0005).
    Column("event_id", String(36)),
    Index("ix_states_run_id", "run_id"),
    _event_id_index("states"),
)

logs = Table(
    "logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_run_id", String(36)),
    Column("task_run_id", String(36)),
    Column("level", Integer, nullable=False),
    Column("logger", String(255), nullable=False),
    Column("message", Text, nullable=False),
    _timestamp("timestamp", nullable=False),
    Column("event_id", String(36)),
    Index("ix_logs_flow_run_id", "flow_run_id"),
    _event_id_index("logs"),
)

# Flows by name, as registered through ``POST /api/flows/`` (0005).
flows = Table(
    "flows",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    _timestamp("created", nullable=False),
    Index("ix_flows_name", "name", unique=True),
)

# How far each writer process got (0007): the last batch it committed, set in the same
# transaction, so that the process that handed the batches over can tell, if the writer
# dies before confirming one, whether it is in (see store/writer.py).
writer_marks = Table(
    "writer_marks",
    metadata,
    Column("writer", String(255), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

cache_entries = Table(
    "cache_entries",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("location", Text, nullable=False),
    _timestamp("expiration"),
    _timestamp("created", nullable=False),
    Column("task_name", String(255)),  # 0003
    Index("ix_cache_entries_task_name", "task_name"),
)

# Concurrency limits (0004): the limit rows are what an acquisition locks; leases are
# the slots held; waiters hold places in line (see orchestration/concurrency.py).
concurrency_limits = Table(
    "concurrency_limits",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("slot_limit", Integer, nullable=False),
    Column("slot_decay_per_second", Float, nullable=False),
    # When the decaying slots taken by rate_limit calls are all gone (NULL: never any).
    _timestamp("rate_empty_at"),
    _timestamp("created", nullable=False),
    _timestamp("updated", nullable=False),
)

concurrency_leases = Table(
    "concurrency_leases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("limit_name", String(255), primary_key=True),
    Column("slots", Integer, nullable=False),
    Column("flow_run_id", String(36)),
    Column("task_run_id", String(36)),
    Column("hostname", String(255)),
    Column("pid", Integer),
    _timestamp("expiration", nullable=False),
    _timestamp("created", nullable=False),
    Index("ix_concurrency_leases_limit_name", "limit_name"),
)

concurrency_waiters = Table(
    "concurrency_waiters",
    metadata,
    Column("ticket", Integer, primary_key=True, autoincrement=False),
    Column("limit_name", String(255), primary_key=True),
    Column("slots", Integer, nullable=False),
    _timestamp("expiration", nullable=False),
    _timestamp("created", nullable=False),
    Index("ix_concurrency_waiters_limit_name", "limit_name"),
)
