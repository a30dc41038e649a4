"""The benchmark suite's smoke run: every workload runs and records every task run.

No timing is asserted here (timing belongs to ``make bench``); this keeps the
benchmarks from rotting.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_benchmark_smoke_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()[2:]]
    assert names == [
        "import",
        "hello",
        "sequential",
        "submit",
        "map",
        "cache",
        "subflows",
        "sleep_submit",
        "many_tasks",
    ]


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_cpu_split_reports_the_writer_process_only_when_there_is_one(writer: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cpu_split", "--n", "300", "--writer", writer],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line = done.stdout.strip()
    assert line.startswith(f"writer={writer} n=300: wall "), line
    writer_cpu = float(line.rsplit("writer process CPU ", 1)[1].split()[0])
    assert (writer_cpu > 0) == (writer == "process"), line


def test_index_cost_reports_every_scheme() -> None:
    options = ["--n", "300", "--history", "100", "--flush", "100", "--repeat", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.index_cost", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "n=300 history=100 flush=100 (best of 1)", lines
    assert len(lines) == 5 and all(line.endswith(" us/task CPU") for line in lines[1:]), lines


@pytest.mark.parametrize("options", [[], ["--cache"]])
def test_timeline_shows_the_writer_start_and_the_flow_end(options: list[str]) -> None:
    # 600 tasks record past the 500 events at which auto mode starts the writer (which
    # may still be starting when the flow ends: its "ready" is then "-").
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.timeline", "--n", "600", "--rounds", "1", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header, row = done.stdout.splitlines()
    assert header.split()[:4] == ["spawn", "ready", "body", "returned"]
    spawn, ready, body, returned, cpu = row.split()
    assert 0 < float(spawn) < float(body) <= float(returned) and float(cpu) > 0
    assert ready == "-" or float(spawn) < float(ready)


@pytest.mark.slow
def test_instructions_counts_what_each_task_adds_over_plain_functions() -> None:
    if shutil.which("valgrind") is None:
        if os.environ.get("CI"):
            pytest.fail("valgrind is not installed (.ci/run installs Debian's package)")
        pytest.skip("valgrind is not installed (Debian's package: valgrind)")
    options = ["--workloads", "sequential", "--n", "20", "60"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    title, header, row = done.stdout.splitlines()
    assert title.startswith("instructions per item: (Ir(n=60) - Ir(n=20)) / 40"), title
    assert header.split() == ["workload", "riverrun", "plain"], header
    name, riverrun, plain = row.split()
    # A recorded task run costs far more than the plain call it wraps, which costs some.
    assert name == "sequential"
    assert int(riverrun.replace(",", "")) > 10 * int(plain.replace(",", "")) > 0, row
