"""The server is SIGKILLed in the middle of a flow of 200 tasks and restarted: every
task run, state and log line arrives exactly once, and the flow never waited for it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.server.test_server_process import cli, client_env
from tests.serverprocess import running_server

TASKS = 200

_SCRIPT = textwrap.dedent(
    f"""
    import time

    from riverrun import flow, get_run_logger, task


    @task
    def step(i: int) -> int:
        get_run_logger().info("task %d says hello", i)
        time.sleep(0.02)
        return i


    @flow
    def long_haul() -> int:
        get_run_logger().info("flow starts")
        return sum(step(i) for i in range({TASKS}))


    print("result", long_haul(), flush=True)
    """
)


def count(database: Path, query: str) -> int:
    with sqlite3.connect(database, timeout=30) as connection:
        value: int = connection.execute(query).fetchone()[0]
        return value


@pytest.mark.slow
def test_sigkill_mid_flow_then_restart_delivers_everything_exactly_once(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    script.write_text(_SCRIPT)
    with running_server(tmp_path / "server") as server:
        database = tmp_path / "server" / "server.db"
        env = client_env(tmp_path / "client", server.api_url, RIVERRUN_FLUSH_INTERVAL="0.05")
        child = subprocess.Popen(
            [sys.executable, str(script)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while count(database, "SELECT count(*) FROM task_runs") < 30:
                assert child.poll() is None, child.communicate()[0]
                assert time.monotonic() < deadline, "no task runs reached the server"
                time.sleep(0.05)
            assert server.stop(signal.SIGKILL) == -signal.SIGKILL
            # The flow goes on while nobody listens; then the server comes back.
            time.sleep(1.5)
            assert child.poll() is None, "the flow ended before the restart: make it longer"
            server.start()
            output, _ = child.communicate(timeout=180)
        finally:
            if child.poll() is None:
                child.kill()
        assert child.returncode == 0, output
        assert f"result {sum(range(TASKS))}" in output
        assert "spooled" in output, output  # the outage did happen mid-flow
        # Whatever the flow spooled and could not deliver at exit, a command delivers.
        listed = cli(env, "flow-run", "ls")
        assert listed.returncode == 0, listed.stderr
        assert "Completed" in listed.stdout

    with sqlite3.connect(database) as connection:
        [(flow_run_id, state)] = connection.execute(
            "SELECT id, state_name FROM flow_runs"
        ).fetchall()
        assert state == "Completed"
        task_runs = connection.execute(
            "SELECT id, state_name FROM task_runs WHERE flow_run_id = ?", (flow_run_id,)
        ).fetchall()
        assert len(task_runs) == TASKS
        assert {state for _, state in task_runs} == {"Completed"}
        histories: dict[str, list[str]] = {}
        for run_id, name in connection.execute("SELECT run_id, name FROM states ORDER BY id"):
            histories.setdefault(run_id, []).append(name)
        assert len(histories) == TASKS + 1
        for run_id, names in histories.items():
            assert names == ["Pending", "Running", "Completed"], run_id
        messages = Counter(
            message
            for (message,) in connection.execute(
                "SELECT message FROM logs WHERE flow_run_id = ?", (flow_run_id,)
            )
        )
        repeated = connection.execute(
            "SELECT task_run_id, message, count(*) FROM logs "
            "GROUP BY task_run_id, message HAVING count(*) > 1"
        ).fetchall()
    assert repeated == []
    for i in range(TASKS):
        assert messages[f"task {i} says hello"] == 1, i
    assert messages["flow starts"] == 1
    assert messages["Finished in state Completed()"] == TASKS + 1
