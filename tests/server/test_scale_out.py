"""Two server processes over one PostgreSQL database, flows from several processes
writing through both: one consistent history, the same read through either."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.postgres import fresh_postgres_database
from tests.server.test_server_process import client_env
from tests.serverprocess import running_server

FLOWS_PER_SERVER = 2
TASKS = 40

_SCRIPT = textwrap.dedent(
    f"""
    import sys

    from riverrun import flow, get_run_logger, task


    @task
    def square(i: int) -> int:
        get_run_logger().info("squared %d", i)
        return i * i


    @flow
    def fan(label: str) -> int:
        futures = [square.submit(i) for i in range({TASKS})]
        return sum(future.result() for future in futures)


    print(fan(sys.argv[1]))
    """
)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_servers_over_one_postgres_database_serve_one_history(tmp_path: Path) -> None:
    script = tmp_path / "fan.py"
    script.write_text(_SCRIPT)
    with (
        fresh_postgres_database() as url,
        running_server(tmp_path / "a", url) as server_a,
        running_server(tmp_path / "b", url) as server_b,
    ):
        children = []
        for server in (server_a, server_b):
            for index in range(FLOWS_PER_SERVER):
                label = f"{server.port}-{index}"
                env = client_env(tmp_path / f"client-{label}", server.api_url)
                children.append(
                    subprocess.Popen(
                        [sys.executable, str(script), label],
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        for child in children:
            output, _ = child.communicate(timeout=300)
            assert child.returncode == 0, output
            assert str(sum(i * i for i in range(TASKS))) in output

        flows = FLOWS_PER_SERVER * 2
        views = []
        for server in (server_a, server_b):
            runs = httpx.post(f"{server.api_url}/flow_runs/filter", json={}).json()
            assert len(runs) == flows
            assert {run["state"]["name"] for run in runs} == {"Completed"}
            labels = sorted(run["parameters"]["label"] for run in runs)
            task_counts = [
                len(
                    httpx.post(
                        f"{server.api_url}/task_runs/filter",
                        json={"flow_run_id": run["id"], "limit": 1000},
                    ).json()
                )
                for run in runs
            ]
            views.append((sorted(run["id"] for run in runs), labels))
            assert task_counts == [TASKS] * flows
        assert views[0] == views[1]

        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                per_run = connection.execute(
                    text("SELECT run_id, count(*) FROM states GROUP BY run_id")
                ).all()
                logs = connection.execute(
                    text(
                        "SELECT count(*), count(DISTINCT (task_run_id, message)) FROM logs "
                        "WHERE message LIKE 'squared %'"
                    )
                ).one()
        finally:
            engine.dispose()
        assert len(per_run) == flows * (TASKS + 1)
        assert {count for _, count in per_run} == {3}
        assert tuple(logs) == (flows * TASKS, flows * TASKS)
