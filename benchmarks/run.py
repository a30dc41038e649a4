"""Run every workload in fresh processes and print a table of medians.

Run: ``make bench`` (or ``.venv/bin/python -m benchmarks.run [--smoke] [--repeats R]
[--prefect-python PATH]``) from the project root. Each workload runs as its own process
for the baseline (plain functions, a plain ``ThreadPoolExecutor``), for riverrun, and,
given a Prefect venv's interpreter, for Prefect — all in the same run, so the ratios
hold on a noisy machine. Per workload it reports the median of: the timed section per
item (or the whole process's wall time for ``import`` and ``hello``), the process's CPU
time and its peak RSS (taken before the workload reads its records back). ``--smoke``
uses small sizes and one repeat (CI runs it so the benchmarks never rot); it fails if
riverrun did not record every task run.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Workload:
    name: str
    n: int
    smoke_n: int
    whole_process: bool  # the metric is the process's wall time, not the timed section
    target: str
    target_value: float  # µs per item, ms per process, or a ratio to the baseline
    prefect_n: int  # Prefect is ~100x slower per item: a smaller n keeps the run short


WORKLOADS = (
    Workload("import", 1, 1, True, "<= 150 ms", 150, 1),
    Workload("hello", 1, 1, True, "<= 300 ms", 300, 1),
    Workload("sequential", 5000, 200, False, "<= 30 us/task", 30, 1000),
    Workload("submit", 5000, 200, False, "<= 60 us/task", 60, 1000),
    Workload("map", 5000, 200, False, "<= 60 us/task", 60, 1000),
    Workload("cache", 2000, 100, False, "<= 30 us/hit", 30, 500),
    Workload("subflows", 200, 20, False, "<= 1000 us/subflow", 1000, 20),
    Workload("sleep_submit", 100, 100, False, "<= 1.3x baseline", 1.3, 100),
    Workload("many_tasks", 100_000, 2000, False, "all recorded, flat RSS", 0, 2000),
)
MODULES = {"import": "import_only"}


@dataclass(frozen=True)
class Sample:
    metric: float  # µs per item, or ms for a whole process
    cpu_ms: float
    rss_mib: float
    recorded: int | None


def run_once(python: str, workload: Workload, engine: str, n: int, log_level: str) -> Sample:
    module = f"benchmarks.workloads.{MODULES.get(workload.name, workload.name)}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RIVERRUN_LOGGING_LEVEL": log_level,
        "PREFECT_LOGGING_LEVEL": log_level,
    }
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        # The run logs go to a file, as to a terminal nobody reads: written, not shown.
        started = time.perf_counter()
        process = subprocess.Popen(
            [python, "-m", module, "--engine", engine, "--n", str(n)],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(
                f"{workload.name} ({engine}) exited with {process.returncode}:\n"
                f"{err.read().decode()[-3000:]}"
            )
        result = json.loads(out.read().decode().strip().splitlines()[-1])
    metric = wall * 1e3 if workload.whole_process else result["seconds"] / n * 1e6
    return Sample(
        metric=metric,
        cpu_ms=(usage.ru_utime + usage.ru_stime) * 1e3,
        rss_mib=result.get("rss_kib", usage.ru_maxrss) / 1024,
        recorded=result["recorded"],
    )


def median_sample(samples: list[Sample]) -> Sample:
    return Sample(
        metric=statistics.median(s.metric for s in samples),
        cpu_ms=statistics.median(s.cpu_ms for s in samples),
        rss_mib=statistics.median(s.rss_mib for s in samples),
        recorded=samples[-1].recorded,
    )


def meets(workload: Workload, ours: Sample, base: Sample, n: int) -> bool:
    if workload.name == "many_tasks":
        return ours.recorded == n
    if workload.name == "sleep_submit":
        return ours.metric <= base.metric * workload.target_value
    return ours.metric <= workload.target_value


def compile_sources() -> None:
    """Write the bytecode of riverrun and of the workloads, as an installed package has
    it: each workload runs in a fresh interpreter, which otherwise compiles from source
    every module it imports wherever bytecode is not written (``PYTHONDONTWRITEBYTECODE``,
    as on the development machine, and an editable install), a cost no user pays."""
    folders = [ROOT / "benchmarks"]
    spec = importlib.util.find_spec("riverrun")
    if spec is not None and spec.submodule_search_locations:
        folders += [Path(location) for location in spec.submodule_search_locations]
    for folder in folders:
        compileall.compile_dir(folder, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", nargs="*", help="workload names to run")
    parser.add_argument("--prefect-python", help="interpreter of a venv with prefect")
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="run log level of both engines (default INFO: every line written and recorded)",
    )
    args = parser.parse_args()
    compile_sources()
    repeats = args.repeats or (1 if args.smoke else 3)
    engines = [("baseline", sys.executable), ("riverrun", sys.executable)]
    if args.prefect_python:
        engines.append(("prefect", args.prefect_python))
    header = f"{'workload':<13}{'n':>7}  {'unit':<8}{'baseline':>10}{'riverrun':>10}{'ratio':>8}"
    if args.prefect_python:
        header += f"{'prefect':>10}{'pf/rr':>8}"
    header += f"{'cpu ms':>9}{'rss MiB':>9}  {'target':<24}"
    print(
        f"medians of {repeats} run(s); python {sys.version.split()[0]}, {os.cpu_count()} cores; "
        f"log level {args.log_level}"
    )
    print(header)
    failures = []
    for workload in WORKLOADS:
        if args.only and workload.name not in args.only:
            continue
        n = workload.smoke_n if args.smoke else workload.n
        results = {
            engine: median_sample(
                [
                    run_once(
                        python,
                        workload,
                        engine,
                        min(n, workload.prefect_n) if engine == "prefect" else n,
                        args.log_level,
                    )
                    for _ in range(repeats)
                ]
            )
            for engine, python in engines
        }
        base, ours = results["baseline"], results["riverrun"]
        unit = "ms" if workload.whole_process else "us/item"
        line = (
            f"{workload.name:<13}{n:>7}  {unit:<8}{base.metric:>10.1f}{ours.metric:>10.1f}"
            f"{ours.metric / base.metric:>7.1f}x"
        )
        if "prefect" in results:
            theirs = results["prefect"]
            line += f"{theirs.metric:>10.1f}{theirs.metric / ours.metric:>7.1f}x"
        ok = meets(workload, ours, base, n)
        mark = "ok" if ok else "MISSED"
        line += f"{ours.cpu_ms:>9.0f}{ours.rss_mib:>9.0f}  {workload.target:<24}{mark}"
        print(line, flush=True)
        expected = 0 if workload.name == "import" else n
        if ours.recorded is not None and ours.recorded != expected:
            failures.append(f"{workload.name}: recorded {ours.recorded} task runs of {expected}")
    for failure in failures:
        print(f"ERROR {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
