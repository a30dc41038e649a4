"""The database's CPU per task for the write-behind rows, by run id kind and index shape.

``python -m benchmarks.index_cost [--n 20000] [--history 0] [--flush 1000]`` writes N
task runs' rows (a task run, three states, a log line, the run's final columns) into a
new SQLite file through ``riverrun.db.statements`` and ``SQLiteDatabase``, ``--flush``
tasks per transaction as the write-behind writer batches them, after ``--history`` tasks
written the same way beforehand. Four schemes: run ids random (version 4, as
``names.new_id`` made them before) or time-ordered (version 7, ``names.new_id`` now),
and the unique ``event_id`` indexes whole (before 0006) or partial (0006). Prints the
process's CPU per task for the N tasks (rows made outside the timed part).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from riverrun.db import statements
from riverrun.db.sqlite import SQLiteDatabase
from riverrun.names import new_id
from riverrun.states import Completed, Pending, Running
from riverrun.store.protocol import TaskRun

_V4_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_V4_SET = (4 << 76) | (0x8000 << 48)
_random = random.Random(0)


def random_id() -> str:
    """A version 4 UUID string, as ``names.new_id`` made them before version 7."""
    text = "%032x" % (_random.getrandbits(128) & _V4_KEEP | _V4_SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_WHOLE_INDEXES = """
DROP INDEX ix_states_event_id;
DROP INDEX ix_logs_event_id;
CREATE UNIQUE INDEX ix_states_event_id ON states (event_id);
CREATE UNIQUE INDEX ix_logs_event_id ON logs (event_id);
"""


def batches(make_id: Callable[[], str], flow_run_id: str, n: int, size: int) -> list[Any]:
    """The write-behind batches of ``n`` sequential tasks, ``size`` tasks each."""
    out = []
    now = datetime.now(UTC)
    for start in range(0, n, size):
        batch = statements.Batch.empty()
        for i in range(start, min(n, start + size)):
            pending, running, completed = Pending(), Running(), Completed()
            run = TaskRun(
                id=make_id(),
                flow_run_id=flow_run_id,
                name=f"add_one-{i % 4096:03x}",
                task_name="add_one",
                dynamic_key=i,
                state=pending,
                created=now,
            )
            batch.task_runs.append(list(statements.task_run_values(run)))
            for state in (pending, running, completed):
                batch.states.append(statements.state_values(run.id, "task", state))
            stamp = statements.micros(now)
            message = f"Task run '{run.name}' - Finished in state Completed()"
            batch.logs.append((flow_run_id, run.id, 20, "riverrun.task_runs", message, stamp))
            batch.task_run_updates[run.id] = (
                "COMPLETED",
                completed.name,
                completed.message,
                1,
                stamp,
                stamp,
                None,
                None,
            )
        out.append(batch)
    return out


def measure(folder: Path, ordered: bool, partial: bool, args: argparse.Namespace) -> float:
    """CPU microseconds per task for ``args.n`` tasks."""
    path = folder / f"{'v7' if ordered else 'v4'}-{'partial' if partial else 'whole'}.db"
    database = SQLiteDatabase(str(path))
    database.migrate(f"sqlite:///{path}")
    if not partial:
        with database.write() as driver:
            for statement in filter(str.strip, _WHOLE_INDEXES.split(";")):
                driver.query(statement)
    make_id = new_id if ordered else random_id
    flow_run_id = make_id()
    for batch in batches(make_id, flow_run_id, args.history, args.flush):
        with database.write() as driver:
            statements.apply_batch(driver, batch)
    timed = batches(make_id, flow_run_id, args.n, args.flush)
    before = time.process_time()
    for batch in timed:
        with database.write() as driver:
            statements.apply_batch(driver, batch)
    cpu = time.process_time() - before
    database.dispose()
    n: int = args.n
    return cpu * 1e6 / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--history", type=int, default=0)
    parser.add_argument("--flush", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schemes = [(False, False), (True, False), (False, True), (True, True)]
    results: dict[tuple[bool, bool], list[float]] = {scheme: [] for scheme in schemes}
    for _ in range(args.repeat):  # interleaved, so that drift hits every scheme alike
        for ordered, partial in schemes:
            with tempfile.TemporaryDirectory(prefix="riverrun-index-cost-") as folder:
                results[ordered, partial].append(measure(Path(folder), ordered, partial, args))
    print(f"n={args.n} history={args.history} flush={args.flush} (best of {args.repeat})")
    for (ordered, partial), cpus in results.items():
        ids = "v7 ids" if ordered else "v4 ids"
        indexes = "partial event_id indexes" if partial else "whole event_id indexes"
        print(f"  {ids}, {indexes}: {min(cpus):6.1f} us/task CPU")


if __name__ == "__main__":
    main()
