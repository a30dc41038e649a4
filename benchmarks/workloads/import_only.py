"""Start-up cost: the whole process, with the engine imported (baseline: without)."""

from __future__ import annotations

from benchmarks.workloads._common import api, parse, report

if __name__ == "__main__":
    args = parse(1)
    if args.engine != "baseline":
        api(args.engine)
    report(args, 0.0, count_runs=False)
