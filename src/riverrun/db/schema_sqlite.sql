-- The SQLite schema at the head revision, generated from riverrun/db/tables.py.
-- Do not edit: regenerate with `python -m riverrun.db.schema_file`.

CREATE TABLE cache_entries (
    "key" VARCHAR(255) NOT NULL,
    location TEXT NOT NULL,
    expiration DATETIME,
    created DATETIME NOT NULL,
    task_name VARCHAR(255),
    CONSTRAINT pk_cache_entries PRIMARY KEY ("key")
);

CREATE INDEX ix_cache_entries_task_name ON cache_entries (task_name);

CREATE TABLE concurrency_leases (
    id VARCHAR(36) NOT NULL,
    limit_name VARCHAR(255) NOT NULL,
    slots INTEGER NOT NULL,
    flow_run_id VARCHAR(36),
    task_run_id VARCHAR(36),
    hostname VARCHAR(255),
    pid INTEGER,
    expiration DATETIME NOT NULL,
    created DATETIME NOT NULL,
    CONSTRAINT pk_concurrency_leases PRIMARY KEY (id, limit_name)
);

CREATE INDEX ix_concurrency_leases_limit_name ON concurrency_leases (limit_name);

CREATE TABLE concurrency_limits (
    name VARCHAR(255) NOT NULL,
    slot_limit INTEGER NOT NULL,
    slot_decay_per_second FLOAT NOT NULL,
    rate_empty_at DATETIME,
    created DATETIME NOT NULL,
    updated DATETIME NOT NULL,
    CONSTRAINT pk_concurrency_limits PRIMARY KEY (name)
);

CREATE TABLE concurrency_waiters (
    ticket INTEGER NOT NULL,
    limit_name VARCHAR(255) NOT NULL,
    slots INTEGER NOT NULL,
    expiration DATETIME NOT NULL,
    created DATETIME NOT NULL,
    CONSTRAINT pk_concurrency_waiters PRIMARY KEY (ticket, limit_name)
);

CREATE INDEX ix_concurrency_waiters_limit_name ON concurrency_waiters (limit_name);

CREATE TABLE flow_runs (
    id VARCHAR(36) NOT NULL,
    name VARCHAR(255) NOT NULL,
    flow_name VARCHAR(255) NOT NULL,
    state_type VARCHAR(16),
    state_name VARCHAR(32),
    state_message TEXT,
    parameters JSON NOT NULL,
    tags JSON NOT NULL,
    parent_flow_run_id VARCHAR(36),
    parent_task_run_id VARCHAR(36),
    run_count INTEGER NOT NULL,
    created DATETIME NOT NULL,
    start_time DATETIME,
    end_time DATETIME,
    hostname VARCHAR(255),
    pid INTEGER,
    heartbeat DATETIME,
    entrypoint TEXT,
    resume_parameters TEXT,
    CONSTRAINT pk_flow_runs PRIMARY KEY (id)
);

CREATE INDEX ix_flow_runs_created ON flow_runs (created);

CREATE INDEX ix_flow_runs_flow_name ON flow_runs (flow_name);

CREATE INDEX ix_flow_runs_parent_flow_run_id ON flow_runs (parent_flow_run_id);

CREATE INDEX ix_flow_runs_state_type ON flow_runs (state_type);

CREATE TABLE flows (
    id VARCHAR(36) NOT NULL,
    name VARCHAR(255) NOT NULL,
    created DATETIME NOT NULL,
    CONSTRAINT pk_flows PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_flows_name ON flows (name);

CREATE TABLE logs (
    id INTEGER NOT NULL,
    flow_run_id VARCHAR(36),
    task_run_id VARCHAR(36),
    level INTEGER NOT NULL,
    logger VARCHAR(255) NOT NULL,
    message TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    event_id VARCHAR(36),
    CONSTRAINT pk_logs PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_logs_event_id ON logs (event_id) WHERE event_id IS NOT NULL;

CREATE INDEX ix_logs_flow_run_id ON logs (flow_run_id);

CREATE TABLE states (
    id INTEGER NOT NULL,
    run_id VARCHAR(36) NOT NULL,
    run_kind VARCHAR(8) NOT NULL,
    type VARCHAR(16) NOT NULL,
    name VARCHAR(32) NOT NULL,
    message TEXT,
    timestamp DATETIME NOT NULL,
    event_id VARCHAR(36),
    CONSTRAINT pk_states PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_states_event_id ON states (event_id) WHERE event_id IS NOT NULL;

CREATE INDEX ix_states_run_id ON states (run_id);

CREATE TABLE task_runs (
    id VARCHAR(36) NOT NULL,
    flow_run_id VARCHAR(36),
    name VARCHAR(255) NOT NULL,
    task_name VARCHAR(255) NOT NULL,
    dynamic_key INTEGER NOT NULL,
    state_type VARCHAR(16),
    state_name VARCHAR(32),
    state_message TEXT,
    tags JSON NOT NULL,
    run_count INTEGER NOT NULL,
    cache_key VARCHAR(255),
    upstream_task_run_ids JSON NOT NULL,
    subflow_run_id VARCHAR(36),
    created DATETIME NOT NULL,
    start_time DATETIME,
    end_time DATETIME,
    task_key VARCHAR(512),
    result TEXT,
    CONSTRAINT pk_task_runs PRIMARY KEY (id)
);

CREATE INDEX ix_task_runs_flow_run_id ON task_runs (flow_run_id);

CREATE TABLE writer_marks (
    writer VARCHAR(255) NOT NULL,
    seq BIGINT NOT NULL,
    CONSTRAINT pk_writer_marks PRIMARY KEY (writer)
);

CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
