"""Where the CPU of sequential tasks goes: the flow's process against its writer process.

``python -m benchmarks.cpu_split [--n 20000] [--writer process|thread|auto]`` runs one
flow of N trivial sequential tasks in a fresh home (after a warm-up flow), closes the
store, and prints per task: the wall time of the flow call, the CPU time of the flow's
process during it, and the CPU time of the writer process over its whole life (start-up
included; zero with ``--writer thread``, where the flow's process writes itself).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

from benchmarks.run import compile_sources


def add_one(x: int) -> int:
    return x + 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--writer", choices=("process", "thread", "auto"), default="process")
    args = parser.parse_args()
    compile_sources()  # as installed: the writer's interpreter reads bytecode
    os.environ["RIVERRUN_HOME"] = tempfile.mkdtemp(prefix="riverrun-cpu-split-")
    os.environ["RIVERRUN_STORE_WRITER"] = args.writer
    # Console lines go nowhere (as the runner sends them to a file); every line is
    # still recorded in the store.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process

    from riverrun import flow, task
    from riverrun.store import close_stores

    add_one_task = task(add_one)

    @flow
    def run(n: int) -> int:
        return sum(add_one_task(i) for i in range(n))

    run(5)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    run(args.n)
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    close_stores()
    writer = resource.getrusage(resource.RUSAGE_CHILDREN)
    per_task = 1e6 / args.n
    print(
        f"writer={args.writer} n={args.n}: wall {wall * per_task:.1f} us/task, "
        f"flow's process CPU {cpu * per_task:.1f} us/task, writer process CPU "
        f"{(writer.ru_utime + writer.ru_stime) * per_task:.1f} us/task"
    )


if __name__ == "__main__":
    main()
