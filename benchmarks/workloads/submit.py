"""N trivial tasks submitted together, then every result collected."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from benchmarks.workloads._common import api, parse, report, timed

WORKERS = 32


def add_one(x: int) -> int:
    return x + 1


if __name__ == "__main__":
    args = parse(5000)
    if args.engine == "baseline":

        def run(n: int) -> list[int]:
            with ThreadPoolExecutor(WORKERS) as pool:
                futures = [pool.submit(add_one, i) for i in range(n)]
                return [f.result() for f in futures]

    else:
        lib = api(args.engine)
        add_one_task = lib.task(add_one)

        @lib.flow(task_runner=lib.thread_pool(WORKERS))
        def run(n: int) -> list[int]:
            futures = [add_one_task.submit(i) for i in range(n)]
            return [f.result() for f in futures]

    run(5)
    report(args, timed(lambda: run(args.n)))
