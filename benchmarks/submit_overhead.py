"""Cost of ``task.submit()`` + ``future.result()`` against a plain ``ThreadPoolExecutor``.

Run: ``.venv/bin/python benchmarks/submit_overhead.py [N]``. Both sides submit N trivial
calls to a pool of the same size and then collect every result, in the same process,
so the ratio is meaningful on a noisy machine. Every task run is recorded in a
throwaway SQLite home. Also measured: 100 tasks that each sleep 10 ms, submitted
together (the pool's width is what counts there, not the per-task cost).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

os.environ["RIVERRUN_HOME"] = tempfile.mkdtemp(prefix="riverrun-bench-")
os.environ.setdefault("RIVERRUN_LOGGING_LEVEL", "WARNING")

from riverrun import flow, task
from riverrun.store import get_store
from riverrun.task_runners import ThreadPoolTaskRunner

WORKERS = 32


def add_one(x: int) -> int:
    return x + 1


def nap(_: int) -> None:
    time.sleep(0.01)


add_one_task = task(add_one)
nap_task = task(nap)


def plain_pool(fn: Callable[[int], object], n: int) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(fn, i) for i in range(n)]
        for future in futures:
            future.result()


@flow(task_runner=ThreadPoolTaskRunner(WORKERS))
def submitting_flow(n: int) -> None:
    futures = [add_one_task.submit(i) for i in range(n)]
    for future in futures:
        future.result()


@flow(task_runner=ThreadPoolTaskRunner(WORKERS))
def napping_flow(n: int) -> None:
    futures = [nap_task.submit(i) for i in range(n)]
    for future in futures:
        future.result()


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    submitting_flow(10)  # warm up: database, migrations, logging
    plain = best_of(5, lambda: plain_pool(add_one, n))
    ours = best_of(3, lambda: submitting_flow(n))
    for label, seconds in (("ThreadPoolExecutor", plain), ("riverrun", ours)):
        each = seconds / n * 1e6
        print(f"{label:<18}  {n} submit+result: {seconds * 1e3:8.1f} ms ({each:.1f} us each)")
    print(f"overhead per task: {(ours - plain) / n * 1e6:.1f} us (ratio {ours / plain:.1f}x)")
    store = get_store()
    recorded = len(store.read_task_runs(store.read_flow_runs(limit=1)[0].id))
    print(f"task runs recorded for the last flow run: {recorded}")
    plain_naps = best_of(3, lambda: plain_pool(nap, 100))
    our_naps = best_of(3, lambda: napping_flow(100))
    print(
        f"100 x 10 ms sleeps: ThreadPoolExecutor {plain_naps * 1e3:.0f} ms, "
        f"riverrun {our_naps * 1e3:.0f} ms (ratio {our_naps / plain_naps:.2f}x)"
    )


if __name__ == "__main__":
    main()
