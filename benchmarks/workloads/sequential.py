"""N trivial tasks called one after another in one flow."""

from __future__ import annotations

from benchmarks.workloads._common import api, parse, report, timed


def add_one(x: int) -> int:
    return x + 1


if __name__ == "__main__":
    args = parse(5000)
    if args.engine == "baseline":

        def run(n: int) -> int:
            return sum(add_one(i) for i in range(n))

    else:
        lib = api(args.engine)
        add_one_task = lib.task(add_one)

        @lib.flow
        def run(n: int) -> int:
            return sum(add_one_task(i) for i in range(n))

    run(5)  # warm up: database, first-run costs
    report(args, timed(lambda: run(args.n)))
