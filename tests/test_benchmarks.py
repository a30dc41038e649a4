"""The benchmark suite's smoke run: every workload runs and records every task run.

No timing is asserted here (timing belongs to ``make bench``); this keeps the
benchmarks from rotting.
"""

from __future__ import annotations

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
