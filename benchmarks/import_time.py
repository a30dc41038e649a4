"""How long ``import riverrun`` takes, against a bare interpreter start, in one run.

Run: ``.venv/bin/python benchmarks/import_time.py [repeats]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_seconds(code: str, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    bare = median_seconds("pass", repeats)
    loaded = median_seconds("from riverrun import flow, task", repeats)
    print(f"interpreter start:               {bare * 1e3:6.1f} ms (median of {repeats})")
    print(f"start + from riverrun import ...: {loaded * 1e3:6.1f} ms")
    print(f"import riverrun costs:           {(loaded - bare) * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
