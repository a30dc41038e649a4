"""What every workload script shares: picking the engine, a fresh home, the report.

A workload runs as ``python -m benchmarks.workloads.NAME --engine E --n N`` from the
project root, in a fresh process. ``E`` is ``baseline`` (plain functions and a plain
``ThreadPoolExecutor``), ``riverrun``, or ``prefect`` (when run by a Prefect venv's
interpreter). It prints one JSON line: the timed section's seconds and the number of
task runs recorded, if the engine records any.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENGINES = ("baseline", "riverrun", "prefect")


@dataclass(frozen=True)
class Args:
    engine: str
    n: int


def parse(default_n: int) -> Args:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=ENGINES, required=True)
    parser.add_argument("--n", type=int, default=default_n)
    parsed = parser.parse_args()
    if parsed.engine != "baseline":
        home = tempfile.mkdtemp(prefix=f"{parsed.engine}-bench-")
        os.environ["RIVERRUN_HOME"] = home
        os.environ["PREFECT_HOME"] = home
    return Args(parsed.engine, parsed.n)


@dataclass(frozen=True)
class Api:
    """The decorators and helpers of the engine under test."""

    flow: Any
    task: Any
    thread_pool: Any
    task_input_hash: Any
    module: Any


def api(engine: str) -> Api:
    if engine == "riverrun":
        import riverrun
        from riverrun.task_runners import ThreadPoolTaskRunner
        from riverrun.tasks import task_input_hash

        return Api(riverrun.flow, riverrun.task, ThreadPoolTaskRunner, task_input_hash, riverrun)
    import prefect  # type: ignore[import-not-found]
    from prefect.task_runners import ThreadPoolTaskRunner as PrefectPool  # type: ignore[import-not-found]
    from prefect.tasks import task_input_hash as prefect_hash  # type: ignore[import-not-found]

    return Api(prefect.flow, prefect.task, PrefectPool, prefect_hash, prefect)


def timed(section: Callable[[], Any]) -> float:
    started = time.perf_counter()
    section()
    return time.perf_counter() - started


def recorded_task_runs(engine: str) -> int | None:
    """Task runs recorded for the newest top-level flow run (riverrun only).

    On the default SQLite file they are counted through ``sqlite3``: reading them back
    through the store would import SQLAlchemy, which the run itself no longer does, into
    the process whose whole time ``hello`` measures.
    """
    if engine != "riverrun":
        return None
    import sqlite3

    from riverrun.db.sqlite import sqlite_path
    from riverrun.settings import get_settings
    from riverrun.store import get_store

    store = get_store()
    store.flush()
    path = sqlite_path(get_settings().database_url)
    if path is None:
        runs = [run for run in store.read_flow_runs() if run.parent_flow_run_id is None]
        return len(store.read_task_runs(runs[0].id)) if runs else 0
    connection = sqlite3.connect(path)
    try:
        newest = connection.execute(
            "SELECT id FROM flow_runs WHERE parent_flow_run_id IS NULL "
            "ORDER BY created DESC, id LIMIT 1"
        ).fetchone()
        if newest is None:
            return 0
        (count,) = connection.execute(
            "SELECT count(*) FROM task_runs WHERE flow_run_id = ?", newest
        ).fetchone()
        return int(count)
    finally:
        connection.close()


def report(args: Args, seconds: float, *, count_runs: bool = True) -> None:
    # Peak memory is taken before the count: reading every task run back is the
    # benchmark's own work, not the workload's.
    import resource

    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    recorded = recorded_task_runs(args.engine) if count_runs else None
    print(json.dumps({"n": args.n, "seconds": seconds, "recorded": recorded, "rss_kib": rss_kib}))
