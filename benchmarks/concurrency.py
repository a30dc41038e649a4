"""What concurrency limits cost: an uncontended acquire + release, and the idle
overhead of tagged task runs when no limit exists for their tags.

Run from the project root (not part of ``make bench`` or CI timing):

    .venv/bin/python -m benchmarks.concurrency [--postgres URL] [--repeats R]

``--postgres`` names a server; a scratch database is created on it and dropped after
(never the server's own databases). Each measurement runs in a fresh process; medians
of ``R`` repeats are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

_ACQUIRE = """
import sys, time, uuid
from riverrun.concurrency.sync import concurrency
from riverrun.store import get_store
n, name = int(sys.argv[1]), f"bench-{uuid.uuid4().hex}"
get_store().create_concurrency_limit(name, 10)
for _ in range(50):  # warm up connections and statement caches
    with concurrency(name):
        pass
started = time.perf_counter()
for _ in range(n):
    with concurrency(name):
        pass
print((time.perf_counter() - started) / n * 1e6)
"""

_TAGS = """
import sys, time
from riverrun import flow, task
n, tagged = int(sys.argv[1]), sys.argv[2] == "tagged"

@task(tags=["external-api", "nightly"] if tagged else [])
def noop(i: int) -> int:
    return i

@flow
def many() -> None:
    for i in range(n):
        noop(i)

many()  # warm up: database created, modules imported
started = time.perf_counter()
many()
print((time.perf_counter() - started) / n * 1e6)
"""


def _measure(code: str, args: list[str], env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return float(done.stdout.strip().splitlines()[-1])


def _env(home: Path, database_url: str | None) -> dict[str, str]:
    import os

    env = {**os.environ, "RIVERRUN_HOME": str(home), "RIVERRUN_LOGGING_LEVEL": "WARNING"}
    if database_url:
        env["RIVERRUN_DATABASE_URL"] = database_url
    else:
        env.pop("RIVERRUN_DATABASE_URL", None)
    return env


def _scratch_postgres(server: str) -> tuple[str, object]:
    from sqlalchemy import create_engine, make_url, text

    base = make_url(server)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"riverrun_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", metavar="URL", help="also measure on this server")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--acquires", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        backends: list[tuple[str, str | None]] = [("sqlite", None)]
        drop = None
        if args.postgres:
            url, drop = _scratch_postgres(args.postgres)
            backends.append(("postgresql", url))
        try:
            for label, backend_url in backends:
                samples = []
                for repeat in range(args.repeats):
                    sample_env = _env(home / f"{label}-{repeat}", backend_url)
                    samples.append(_measure(_ACQUIRE, [str(args.acquires)], sample_env))
                results[f"acquire+release us ({label})"] = statistics.median(samples)
        finally:
            if drop is not None:
                drop()  # type: ignore[operator]
        for kind in ("untagged", "tagged"):
            samples = [
                _measure(_TAGS, [str(args.tasks), kind], _env(home / f"{kind}-{r}", None))
                for r in range(args.repeats)
            ]
            results[f"task run us, {kind}, no limit (sqlite)"] = statistics.median(samples)
    for name, value in results.items():
        print(f"{name:45} {value:10.1f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
