"""How many state transitions one server process accepts, on SQLite or PostgreSQL.

Starts ``riverrun server start`` on a free loopback port over a fresh database, then
for ``--seconds`` each, from ``--clients`` threads with one pooled connection each:

- ``checked``: one ``POST /api/task_runs/{id}/set_state`` per transition, each checked
  by the orchestration rules and committed before the answer (what an API user does);
- ``batched``: ``POST /api/events/batch`` with ``--batch`` state events a request
  (what the HTTP store's write-behind sends while flows run).

Prints one JSON line. Example::

    .venv/bin/python -m benchmarks.server_load --database sqlite --seconds 10
    .venv/bin/python -m benchmarks.server_load --database postgres --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

POSTGRES_URL = os.environ.get(
    "RIVERRUN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CYCLE = ("PENDING", "RUNNING", "COMPLETED")


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'load.db'}"
        return
    from sqlalchemy import create_engine, make_url, text

    base = make_url(POSTGRES_URL)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"riverrun_load_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def server(database_url: str, home: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env.update(RIVERRUN_HOME=str(home), RIVERRUN_DATABASE_URL=database_url)
    log = open(home / "server.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "riverrun", "server", "start", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def make_task_runs(client: httpx.Client, count: int) -> list[str]:
    flow_run = str(uuid.uuid4())
    client.post("flow_runs/", json={"id": flow_run, "name": "load", "flow_name": "load"})
    ids = [str(uuid.uuid4()) for _ in range(count)]
    events = [
        {
            "kind": "task_run",
            "run": {"id": run_id, "name": "t", "task_name": "t", "flow_run_id": flow_run},
        }
        for run_id in ids
    ]
    client.post("events/batch", json={"events": events}).raise_for_status()
    return ids


def run_for(
    seconds: float, clients: int, work: Callable[[httpx.Client, int], int], url: str
) -> int:
    """Run ``work`` repeatedly from ``clients`` threads for ``seconds``; total it."""
    totals = [0] * clients
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        with httpx.Client(base_url=url + "/", timeout=60) as client:
            while time.monotonic() < stop:
                totals[index] += work(client, index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(totals)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="riverrun-load-"))
    with fresh_database(args.database, home) as database_url, server(database_url, home) as url:
        with httpx.Client(base_url=url + "/", timeout=60) as setup:
            runs = [make_task_runs(setup, 200) for _ in range(args.clients)]
        positions = [0] * args.clients

        def checked(client: httpx.Client, index: int) -> int:
            own = runs[index]
            step = positions[index]
            positions[index] += 1
            run_id = own[step % len(own)]
            state = CYCLE[(step // len(own)) % len(CYCLE)]
            response = client.post(f"task_runs/{run_id}/set_state", json={"state": {"type": state}})
            response.raise_for_status()
            return 1

        def batched(client: httpx.Client, index: int) -> int:
            own = runs[index]
            now = datetime.now(UTC).isoformat()
            events: list[dict[str, Any]] = [
                {
                    "kind": "state",
                    "id": str(uuid.uuid4()),
                    "run_id": own[n % len(own)],
                    "run_kind": "task",
                    "state": {"type": CYCLE[n % 3], "timestamp": now},
                    "run_count": 1,
                }
                for n in range(args.batch)
            ]
            client.post("events/batch", json={"events": events}).raise_for_status()
            size: int = args.batch
            return size

        result: dict[str, Any] = {"database": args.database, "clients": args.clients}
        for name, work in (("checked", checked), ("batched", batched)):
            started = time.perf_counter()
            done = run_for(args.seconds, args.clients, work, url)
            elapsed = time.perf_counter() - started
            result[f"{name}_transitions_per_second"] = round(done / elapsed)
        result["batch"] = args.batch
        print(json.dumps(result))


if __name__ == "__main__":
    main()
