"""Concurrency limits shared through a real ``riverrun server start``: the CLI, holders
in several processes, tagged task runs, and the error answers.

The store-level contract (every ``RunStore`` concurrency method on the HTTP store) is in
``tests/store/test_concurrency_limits.py``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from riverrun import flow, task
from riverrun.context import task_run_context
from riverrun.store import RunStore
from riverrun.store.http import HttpStore
from riverrun.store.protocol import SlotRequest
from riverrun.testing import riverrun_test_harness
from tests.concurrency.holder import count
from tests.postgres import BACKENDS, empty_database
from tests.server.test_server_process import cli, client_env
from tests.serverprocess import running_server

# Each thread of each process holds a slot of NAME TIMES times, counting the holders
# in COUNTER under an exclusive file lock (``tests/concurrency/holder.py``).
HOLDERS = textwrap.dedent(
    """
    import sys, threading, time
    from pathlib import Path
    from riverrun.concurrency.sync import concurrency
    from tests.concurrency.holder import count

    name, counter, threads, times = sys.argv[1], Path(sys.argv[2]), *map(int, sys.argv[3:5])

    def hold() -> None:
        for _ in range(times):
            with concurrency(name):
                count(counter, 1)
                time.sleep(0.05)
                count(counter, -1)

    workers = [threading.Thread(target=hold) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    """
)


@pytest.fixture
def http_store(empty_api_server: str, tmp_path: Path) -> Iterator[RunStore]:
    with riverrun_test_harness(tmp_path / "client", api_url=empty_api_server) as store:
        assert isinstance(store, HttpStore)
        yield store


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    path = tmp_path / "counter"
    path.write_text("0 0")
    return path


def counted(counter: Path) -> tuple[int, int]:
    """(holders now, the most holders seen at once)."""
    current, highest = (int(part) for part in counter.read_text().split())
    return current, highest


def test_the_cli_manages_limits_through_the_server(empty_api_server: str, tmp_path: Path) -> None:
    home = tmp_path / "client"
    env = client_env(home, empty_api_server)

    def ok(*args: str) -> str:
        done = cli(env, "concurrency-limit", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert ok("create", "db", "2") == "Created concurrency limit 'db' with 2 slot(s)\n"
    assert "decaying 0.5 slot(s)" in ok("create", "api", "4", "--slot-decay-per-second", "0.5")
    listed = ok("ls").splitlines()
    assert [line.split()[:4] for line in listed[1:]] == [
        ["api", "4", "0", "0.5"],
        ["db", "2", "0", "0"],
    ]
    assert "3 slot(s), slot decay 0 per second" in ok("update", "db", "--limit", "3")
    assert "every slot is free" in ok("reset", "db")
    assert "  limit:          3 slot(s)" in ok("inspect", "db")
    assert ok("delete", "db") == "Deleted concurrency limit 'db'\n"
    # Recorded by the server, not in a database of the client's own.
    limits = httpx.post(f"{empty_api_server}/concurrency_limits/filter", json={}).json()
    assert [limit["name"] for limit in limits] == ["api"]
    assert not (home / "riverrun.db").exists()

    for args, message in [
        (("inspect", "db"), "No concurrency limit named 'db'"),
        (("delete", "db"), "No concurrency limit named 'db'"),
        (("create", "api", "1"), "'api' exists already"),
        (("create", "x" * 300, "1"), "longer than 255 characters"),
    ]:
        failed = cli(env, "concurrency-limit", *args)
        assert failed.returncode == 1 and failed.stdout == ""
        assert failed.stderr.startswith("Error: ") and message in failed.stderr, failed.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_cap_holds_across_processes_through_the_server(
    backend: str, tmp_path: Path, counter: Path
) -> None:
    limit, processes, threads, times = 3, 2, 4, 4
    with (
        empty_database(backend, tmp_path) as database_url,
        running_server(tmp_path / "server", database_url) as server,
    ):
        with riverrun_test_harness(tmp_path / "admin", api_url=server.api_url) as store:
            store.create_concurrency_limit("cap", limit)
        holders = [
            subprocess.Popen(
                [sys.executable, "-c", HOLDERS, "cap", str(counter), str(threads), str(times)],
                env=client_env(tmp_path / f"client-{i}", server.api_url),
                cwd=Path(__file__).parents[2],
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(processes)
        ]
        for holder in holders:
            _, err = holder.communicate(timeout=120)
            assert holder.returncode == 0, err
        with riverrun_test_harness(tmp_path / "admin", api_url=server.api_url) as store:
            left = store.read_concurrency_limit("cap")
    assert counted(counter) == (0, limit)
    assert (left.active_slots, left.leases, left.waiting) == (0, [], 0)
    for i in range(processes):
        assert not (tmp_path / f"client-{i}" / "riverrun.db").exists()


def test_tagged_task_runs_take_slots_through_the_server(
    http_store: RunStore, counter: Path
) -> None:
    http_store.create_concurrency_limit("db", 2)
    held_by_self: list[bool] = []

    @task(tags=["db"])
    def query(i: int) -> int:
        count(counter, 1)
        leases = http_store.read_concurrency_limit("db").leases
        context = task_run_context.get()
        assert context is not None
        held_by_self.append(context.task_run.id in {lease.holder.task_run_id for lease in leases})
        time.sleep(0.05)
        count(counter, -1)
        return i

    @flow
    def queries() -> list[int]:
        futures = [query.submit(i) for i in range(8)]
        return [future.result() for future in futures]

    assert queries() == list(range(8))
    assert counted(counter) == (0, 2)
    assert held_by_self == [True] * 8
    assert http_store.read_concurrency_limit("db").leases == []


def test_tags_naming_no_limit_cost_no_request_per_task_run(http_store: RunStore) -> None:
    http_store.create_concurrency_limit("db", 1)
    asked: list[str] = []
    assert isinstance(http_store, HttpStore)
    call = http_store._call

    def counting(method: str, path: str, body: Any = None) -> httpx.Response:
        if path.startswith("concurrency_limits/"):
            asked.append(path)
        return call(method, path, body)

    http_store._call = counting  # type: ignore[method-assign]

    @task(tags=["not-a-limit"])
    def plain(i: int) -> int:
        return i

    @flow
    def many() -> int:
        return sum(plain(i) for i in range(30))

    assert many() == sum(range(30))
    assert asked in ([], ["concurrency_limits/names"])


def test_error_answers_name_the_limit_or_the_problem(
    empty_api_server: str, http_store: RunStore
) -> None:
    base = f"{empty_api_server}/concurrency_limits"
    created = httpx.post(f"{base}/", json={"name": "db", "limit": 1})
    assert created.status_code == 201 and created.json()["name"] == "db"

    exists = httpx.post(f"{base}/", json={"name": "db", "limit": 1})
    assert exists.status_code == 409
    assert exists.json()["name"] == "db" and "'db' exists already" in exists.json()["detail"]

    for missing in (
        httpx.get(f"{base}/name/nope"),
        httpx.patch(f"{base}/name/nope", json={"limit": 2}),
        httpx.delete(f"{base}/name/nope"),
        httpx.post(f"{base}/name/nope/reset"),
        httpx.post(
            f"{base}/acquire",
            json={"names": ["db", "nope"], "occupy": 1, "hold": True, "lease_seconds": 5},
        ),
    ):
        assert missing.status_code == 404, missing.text
        assert missing.json()["name"] == "nope"
        assert "No concurrency limit named 'nope'" in missing.json()["detail"]

    too_many = httpx.post(
        f"{base}/acquire", json={"names": ["db"], "occupy": 2, "hold": True, "lease_seconds": 5}
    )
    assert too_many.status_code == 422
    assert "cannot occupy 2 slots of concurrency limit 'db'" in too_many.json()["detail"]
    blank = httpx.post(f"{base}/", json={"name": " db", "limit": 1})
    assert blank.status_code == 422 and "surrounding blanks" in blank.json()["detail"]
    negative = httpx.patch(f"{base}/name/db", json={"limit": -1})
    assert negative.status_code == 422 and "whole number >= 0" in negative.json()["detail"]
    # Refused by the body's limits: pydantic's list of errors, which the store words.
    for body in (
        {"name": "db", "limit": "many"},
        {"name": "x" * 2000, "limit": 1},
        {"name": "db", "limit": 1, "colour": "red"},
    ):
        assert httpx.post(f"{base}/", json=body).status_code == 422
    with pytest.raises(ValueError, match="lease_seconds: Input should be greater than 0"):
        http_store.acquire_concurrency_slots(
            SlotRequest(names=("db",), occupy=1, hold=True, lease_seconds=0)
        )
    assert http_store.read_concurrency_limit("db").waiting == 0


def test_the_routes_require_the_auth_string(tmp_path: Path) -> None:
    auth = {"RIVERRUN_SERVER_API_AUTH_STRING": "admin:s3cret"}
    with running_server(tmp_path / "server", extra_env=auth) as server:
        base = f"{server.api_url}/concurrency_limits"
        assert httpx.post(f"{base}/filter", json={}).status_code == 401
        assert httpx.post(f"{base}/", json={"name": "db", "limit": 1}).status_code == 401
        assert httpx.get(f"{base}/names", auth=("admin", "s3cret")).json() == {"names": []}
