"""task.map over N items, then the results (baseline: ThreadPoolExecutor.map)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.workloads._common import api, parse, report, timed

WORKERS = 32


def add_one(x: int) -> int:
    return x + 1


if __name__ == "__main__":
    args = parse(5000)
    if args.engine == "baseline":

        def run(n: int) -> list[int]:
            with ThreadPoolExecutor(WORKERS) as pool:
                return list(pool.map(add_one, range(n)))

    else:
        lib = api(args.engine)
        add_one_task = lib.task(add_one)

        @lib.flow(task_runner=lib.thread_pool(WORKERS))
        def run(n: int) -> Any:
            return add_one_task.map(range(n)).result()

    run(5)
    report(args, timed(lambda: run(args.n)))
