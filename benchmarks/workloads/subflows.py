"""A flow calling a small subflow N times."""

from __future__ import annotations

from benchmarks.workloads._common import api, parse, report, timed


def double(x: int) -> int:
    return 2 * x


if __name__ == "__main__":
    args = parse(200)
    if args.engine == "baseline":

        def run(n: int) -> int:
            return sum(double(i) for i in range(n))

    else:
        lib = api(args.engine)
        child = lib.flow(double)

        @lib.flow
        def run(n: int) -> int:
            return sum(child(i) for i in range(n))

    run(2)
    report(args, timed(lambda: run(args.n)))
