"""N tasks that each sleep 10 ms, submitted together (the pool's width counts)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.workloads._common import api, parse, report, timed

WORKERS = 32


def nap(_: int) -> None:
    time.sleep(0.01)


if __name__ == "__main__":
    args = parse(100)
    if args.engine == "baseline":

        def run(n: int) -> None:
            with ThreadPoolExecutor(WORKERS) as pool:
                for future in [pool.submit(nap, i) for i in range(n)]:
                    future.result()

    else:
        lib = api(args.engine)
        nap_task = lib.task(nap)

        @lib.flow(task_runner=lib.thread_pool(WORKERS))
        def run(n: int) -> None:
            for future in [nap_task.submit(i) for i in range(n)]:
                future.result()

    run(2)
    report(args, timed(lambda: run(args.n)))
