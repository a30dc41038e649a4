"""What a cache hit costs against running the task's body, measured in one process.

``python -m benchmarks.cache_hit_cost [--n 500] [--work-ms 5]`` runs three flows of N
calls each in a fresh home: an uncached task whose body burns ``--work-ms`` of CPU, the
same task cached (``INPUTS + TASK_SOURCE``) called with one input (one miss, then
hits), and the cached task called with N distinct inputs (every call a miss: body,
pickle, file, entry). Prints milliseconds per call for each, and the body alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time


def burn(milliseconds: float) -> int:
    end = time.perf_counter() + milliseconds / 1000
    count = 0
    while time.perf_counter() < end:
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--work-ms", type=float, default=5.0)
    args = parser.parse_args()
    os.environ["RIVERRUN_HOME"] = tempfile.mkdtemp(prefix="riverrun-cache-cost-")
    os.environ.setdefault("RIVERRUN_LOGGING_LEVEL", "WARNING")

    from riverrun import flow, task
    from riverrun.cache_policies import INPUTS, TASK_SOURCE

    def body(key: int) -> int:
        burn(args.work_ms)
        return key

    plain = task(name="plain")(body)
    cached = task(name="cached", cache_policy=INPUTS + TASK_SOURCE)(body)

    @flow
    def calls(which: str, distinct: bool) -> None:
        chosen = plain if which == "plain" else cached
        for i in range(args.n):
            chosen(i if distinct else 0)

    def per_call_ms(which: str, distinct: bool) -> float:
        start = time.perf_counter()
        calls(which, distinct)
        elapsed: float = time.perf_counter() - start
        return float(elapsed * 1000 / args.n)

    logging.disable(logging.CRITICAL)
    start = time.perf_counter()
    for _ in range(args.n):
        burn(args.work_ms)
    body_ms = (time.perf_counter() - start) * 1000 / args.n
    report = {
        "n": args.n,
        "body_alone_ms": round(body_ms, 4),
        "uncached_task_ms": round(per_call_ms("plain", distinct=False), 4),
        "cached_misses_ms": round(per_call_ms("cached", distinct=True), 4),
        "cached_hits_ms": round(per_call_ms("cached", distinct=False), 4),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
