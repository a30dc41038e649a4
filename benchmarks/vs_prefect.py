"""The same flow of N trivial tasks under riverrun and under Prefect, in one run.

Prefect is never a dependency: install it in a venv of its own and pass that venv's
interpreter, e.g. ``python3 -m venv /tmp/pf && /tmp/pf/bin/pip install prefect``, then
``.venv/bin/python benchmarks/vs_prefect.py --prefect-python /tmp/pf/bin/python``.
Each side runs in a fresh process with a fresh home, logs going to /dev/null.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from {package} import flow, task

    @task
    def add_one(x: int) -> int:
        return x + 1

    @flow
    def many(n: int) -> int:
        return sum(add_one(i) for i in range(n))

    many(5)  # start-up, database creation, first-run costs
    started = time.perf_counter()
    many({n})
    elapsed = time.perf_counter() - started
    print(f"{{elapsed / {n} * 1e6:.0f}}")
    """
)


def per_task_microseconds(python: str, package: str, n: int) -> float:
    home = tempfile.mkdtemp(prefix=f"{package}-bench-")
    env = {
        **os.environ,
        "RIVERRUN_HOME": home,
        "PREFECT_HOME": home,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    result = subprocess.run(
        [python, "-c", SCRIPT.format(package=package, n=n)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        check=True,
        timeout=1800,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefect-python", required=True)
    parser.add_argument("-n", type=int, default=500)
    options = parser.parse_args()
    ours = per_task_microseconds(sys.executable, "riverrun", options.n)
    theirs = per_task_microseconds(options.prefect_python, "prefect", options.n)
    print(f"flow of {options.n} tasks, per task (flow call, records written):")
    print(f"  riverrun: {ours:8.0f} us")
    print(f"  prefect:  {theirs:8.0f} us")
    print(f"  prefect / riverrun: {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
