"""N trivial tasks submitted in one flow, their futures dropped at once.

The process's peak RSS (measured by the runner) must not grow with N: a finished
task whose future nobody holds leaves nothing behind but its record.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from benchmarks.workloads._common import api, parse, report, timed

WORKERS = 32


def make(i: int) -> bytes:
    return bytes(1000)


if __name__ == "__main__":
    args = parse(100_000)
    if args.engine == "baseline":

        def run(n: int) -> None:
            with ThreadPoolExecutor(WORKERS) as pool:
                for i in range(n):
                    pool.submit(make, i)

    else:
        lib = api(args.engine)
        make_task = lib.task(make)

        @lib.flow(task_runner=lib.thread_pool(WORKERS))
        def run(n: int) -> None:
            for i in range(n):
                make_task.submit(i)

    report(args, timed(lambda: run(args.n)))
