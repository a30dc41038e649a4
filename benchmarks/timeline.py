"""Where the wall time of one flow of N tasks goes: the flow's thread, the writer's start.

``python -m benchmarks.timeline [--n 5000] [--cache] [--rounds 5]`` runs, in a fresh
home per round (after a warm-up flow, as the workloads do), one flow of N trivial
sequential tasks (``--cache``: N hits of one cached task) and prints, in ms from the
flow call: when the writer process was spawned, when it was ready, when the flow's body
was done, and when the flow call returned (its end waits for the writer to commit
everything), with the flow thread's CPU time. The gap between "body" and "returned" is
the backlog the writer still held.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

from benchmarks.run import compile_sources


def add_one(x: int) -> int:
    return x + 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--cache", action="store_true", help="hits of one cached task")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    compile_sources()  # as installed: the writer's interpreter reads bytecode
    # Console lines go nowhere (as the runner sends them to a file); every line is
    # still recorded in the store.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process

    from riverrun import flow, task
    from riverrun.store import close_stores
    from riverrun.store import writer as writer_module
    from riverrun.tasks import task_input_hash

    started = [0.0]
    marks: dict[str, float] = {}

    def since() -> float:
        return (time.perf_counter() - started[0]) * 1000

    # Instrumentation only: the writer's spawn and its "ready" answer, timed.
    class TimedWriter(writer_module.WriterProcess):
        def __init__(self, *given: Any, **named: Any) -> None:
            marks.setdefault("spawn", since())
            super().__init__(*given, **named)

        def _answer(self, seq: int, text: str) -> None:
            if seq == 0:
                marks.setdefault("ready", since())
            super()._answer(seq, text)

    import riverrun.store.embedded as embedded

    embedded.WriterProcess = TimedWriter  # type: ignore[attr-defined]

    work = task(cache_key_fn=task_input_hash)(add_one) if args.cache else task(add_one)

    @flow
    def run(n: int) -> int:
        total = sum(work(1 if args.cache else i) for i in range(n))
        marks["body"] = since()
        return total

    print(f"{'spawn':>8}{'ready':>8}{'body':>8}{'returned':>10}{'flow CPU':>10}  (ms)")
    for _ in range(args.rounds):
        os.environ["RIVERRUN_HOME"] = tempfile.mkdtemp(prefix="riverrun-timeline-")
        run(1 if args.cache else 5)  # warm-up: the database, the cache entry
        marks.clear()
        cpu = time.thread_time()
        started[0] = time.perf_counter()
        run(args.n)
        returned, cpu = since(), (time.thread_time() - cpu) * 1000
        close_stores()
        writer = "".join(
            f"{marks[key]:8.1f}" if key in marks else f"{'-':>8}" for key in ("spawn", "ready")
        )
        print(f"{writer}{marks['body']:8.1f}{returned:10.1f}{cpu:10.1f}")


if __name__ == "__main__":
    main()
