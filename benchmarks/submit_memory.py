"""Memory of a flow that submits many tasks returning 10 KB each.

Run: ``.venv/bin/python benchmarks/submit_memory.py [N]``. Each case runs in a fresh
process and prints the most 10 KB results alive at once and the process's peak RSS:
"dropped" does not keep the futures, "kept" keeps every future (so every result must
stay alive: that is the baseline of what the user references).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import threading
import weakref

CASES = ("dropped", "kept")


class Blob:
    """A 10 KB result that counts how many of its kind are alive."""

    alive = 0
    peak = 0
    lock = threading.Lock()

    def __init__(self) -> None:
        self.payload = bytes(10_000)
        with Blob.lock:
            Blob.alive += 1
            Blob.peak = max(Blob.peak, Blob.alive)
        weakref.finalize(self, Blob.gone)

    @staticmethod
    def gone() -> None:
        with Blob.lock:
            Blob.alive -= 1


def run_case(case: str, n: int) -> None:
    os.environ["RIVERRUN_HOME"] = tempfile.mkdtemp(prefix="riverrun-bench-")
    os.environ.setdefault("RIVERRUN_LOGGING_LEVEL", "WARNING")
    from riverrun import flow, task

    @task
    def make() -> Blob:
        return Blob()

    kept = []

    @flow
    def produce() -> None:
        for _ in range(n):
            future = make.submit()
            if case == "kept":
                kept.append(future)

    produce()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{case:<8} {n} tasks: at most {Blob.peak} results alive, peak RSS {rss_mib:.0f} MiB")


def main() -> None:
    if len(sys.argv) > 2:
        run_case(sys.argv[2], int(sys.argv[1]))
        return
    n = sys.argv[1] if len(sys.argv) > 1 else "10000"
    for case in CASES:
        subprocess.run([sys.executable, __file__, n, case], check=True)


if __name__ == "__main__":
    main()
