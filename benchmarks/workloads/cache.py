"""N calls of a cached task with the same input: one miss, then hits."""

from __future__ import annotations

from benchmarks.workloads._common import api, parse, report, timed


def double(x: int) -> int:
    return 2 * x


if __name__ == "__main__":
    args = parse(2000)
    if args.engine == "baseline":

        def run(n: int) -> int:
            return sum(double(1) for _ in range(n))

    else:
        lib = api(args.engine)
        cached_double = lib.task(cache_key_fn=lib.task_input_hash)(double)

        @lib.flow
        def run(n: int) -> int:
            return sum(cached_double(1) for _ in range(n))

    run(1)  # the miss that fills the cache
    report(args, timed(lambda: run(args.n)))
