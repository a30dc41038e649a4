"""Instructions per item, counted by valgrind: the per-task cost without the machine's noise.

``python -m benchmarks.instructions [--workloads sequential cache] [--n 1000 3000]
[--writer thread|process]`` runs each workload twice under ``valgrind --tool=callgrind``
(N small, then N large) and prints per item ``(Ir(large) - Ir(small)) / (large - small)``
instructions, so that start-up, imports and the warm-up flow cancel out: riverrun's,
and the plain-function baseline's.

By default the run history is committed in the flow's own process
(``RIVERRUN_STORE_WRITER=thread``), so the count is everything a task run costs: the
run, its records and their commit. With ``--writer process`` the writer process is
counted apart; but valgrind slows each process about fifty-fold, the writer's start-up
too, so how the work splits between the two then depends on when the writer is ready,
and only their sum compares across versions.

Wall time on this shared two-core VM moves by a third from one minute to the next;
these counts repeat to within about a percent (``PYTHONHASHSEED=0``). Use them to
compare two versions of the hot path; ``make bench`` stays the measure of the targets,
which are in time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.run import ROOT, compile_sources

#: The workloads whose per-item cost this counts (whole-process ones have no items).
WORKLOADS = ("sequential", "submit", "map", "cache", "subflows")


@dataclass(frozen=True)
class Count:
    """Instructions of one workload run: its own process and the processes it started."""

    own: int
    children: int


def count(workload: str, engine: str, n: int, writer: str) -> Count:
    """Run ``workload`` once under callgrind and read its instruction totals."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian's package: valgrind)")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONHASHSEED": "0",
        "RIVERRUN_STORE_WRITER": writer,
    }
    with tempfile.TemporaryDirectory(prefix="riverrun-instructions-") as folder:
        out_files = Path(folder) / "callgrind.%p"
        command = [
            valgrind,
            "--tool=callgrind",
            "--trace-children=yes",
            f"--callgrind-out-file={out_files}",
            sys.executable,
            "-m",
            f"benchmarks.workloads.{workload}",
            "--engine",
            engine,
            "--n",
            str(n),
        ]
        with tempfile.TemporaryFile() as err:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err
            )
            if process.wait() != 0:
                err.seek(0)
                raise RuntimeError(
                    f"{workload} ({engine}, n={n}) under valgrind exited with "
                    f"{process.returncode}:\n{err.read().decode(errors='replace')[-3000:]}"
                )
        totals = {
            int(path.name.rsplit(".", 1)[1]): _total(path)
            for path in Path(folder).glob("callgrind.*")
        }
    own = totals.pop(process.pid)
    return Count(own=own, children=sum(totals.values()))


def _total(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {path}")


def per_item(
    workload: str, engine: str, small: int, large: int, writer: str
) -> tuple[float, float]:
    """Instructions per item of the workload's own process and of its children."""
    first = count(workload, engine, small, writer)
    second = count(workload, engine, large, writer)
    items = large - small
    return (second.own - first.own) / items, (second.children - first.children) / items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workloads", nargs="+", choices=WORKLOADS, default=["sequential", "cache"]
    )
    parser.add_argument("--n", nargs=2, type=int, default=[1000, 3000], metavar=("SMALL", "LARGE"))
    parser.add_argument(
        "--writer",
        choices=("thread", "process"),
        default="thread",
        help="who commits the run history (RIVERRUN_STORE_WRITER); default: thread",
    )
    args = parser.parse_args()
    small, large = args.n
    if not 0 < small < large:
        parser.error(f"--n needs 0 < SMALL < LARGE, got {small} {large}")
    compile_sources()  # as installed: no compiling inside the counted runs
    print(
        f"instructions per item: (Ir(n={large}) - Ir(n={small})) / {large - small}, "
        f"RIVERRUN_STORE_WRITER={args.writer}"
    )
    columns = ["riverrun", "writer", "plain"] if args.writer == "process" else ["riverrun", "plain"]
    print(f"{'workload':<12}" + "".join(f"{name:>12}" for name in columns))
    for workload in args.workloads:
        own, writer = per_item(workload, "riverrun", small, large, args.writer)
        plain, _ = per_item(workload, "baseline", small, large, args.writer)
        values = [own, writer, plain] if args.writer == "process" else [own, plain]
        print(f"{workload:<12}" + "".join(f"{value:>12,.0f}" for value in values), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
