"""Per-task overhead: a task call inside a flow against a plain function call.

Run: ``.venv/bin/python benchmarks/task_overhead.py [N]``. Both sides are measured in
the same process, so the ratio is meaningful on a noisy machine; absolute numbers are
printed for the record. Every task run is recorded in a throwaway SQLite home.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ["RIVERRUN_HOME"] = tempfile.mkdtemp(prefix="riverrun-bench-")
os.environ.setdefault("RIVERRUN_LOGGING_LEVEL", "WARNING")

from riverrun import flow, task
from riverrun.store import get_store


def add_one(x: int) -> int:
    return x + 1


add_one_task = task(add_one)


@flow
def plain_flow(n: int) -> int:
    total = 0
    for i in range(n):
        total += add_one(i)
    return total


@flow
def task_flow(n: int) -> int:
    total = 0
    for i in range(n):
        total += add_one_task(i)
    return total


def best_of(repeats: int, fn: object, n: int) -> float:
    assert callable(fn)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(n)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    task_flow(10)  # warm up: database, migrations, logging
    plain = best_of(5, plain_flow, n)
    tasks = best_of(3, task_flow, n)
    per_task_us = (tasks - plain) / n * 1e6
    print(f"flow of {n} plain calls: {plain * 1e3:8.1f} ms")
    print(f"flow of {n} task calls:  {tasks * 1e3:8.1f} ms")
    print(f"overhead per task: {per_task_us:.1f} us (ratio tasks/plain: {tasks / plain:.0f}x)")
    recorded = len(get_store().read_task_runs(get_store().read_flow_runs(limit=1)[0].id))
    print(f"task runs recorded for the last flow run: {recorded}")


if __name__ == "__main__":
    main()
