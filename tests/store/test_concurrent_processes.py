"""Real processes recording runs in one database at once, and exiting right after.

Each process runs ``flow_script.py`` (written to ``tmp_path``): it imports riverrun,
signals that it is ready, waits for the "go" file so that every process opens the
fresh database (and so races its migration) at the same moment, then runs a flow of
tasks and exits without any explicit flush.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from riverrun.store import RunStore
from riverrun.testing import riverrun_test_harness

PROCESSES = 8
TASKS = 50

_SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    import time
    from pathlib import Path

    from riverrun import flow, get_run_logger, task

    barrier, ending = Path(sys.argv[1]), sys.argv[2]


    @task
    def add(x: int) -> int:
        get_run_logger().info("adding %d", x)
        return x + 1


    @flow
    def race(n: int) -> list[int]:
        get_run_logger().info("racing with %d tasks", n)
        return [add(i) for i in range(n)]


    (barrier / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("never told to go")
        time.sleep(0.002)
    assert race({tasks}) == list(range(1, {tasks} + 1))
    if ending == "os._exit":
        # No atexit handlers, no interpreter shutdown: only what the flow call wrote.
        os._exit(0)
    """
).replace("{tasks}", str(TASKS))


def start_processes(
    tmp_path: Path,
    count: int,
    *,
    home: Path,
    database_url: str,
    ending: str = "return",
    flush_interval: str | None = None,
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """Start ``count`` processes that each wait at the barrier, then release them together."""
    script = tmp_path / "flow_script.py"
    script.write_text(_SCRIPT)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env["RIVERRUN_HOME"] = str(home)
    if not database_url.startswith("sqlite"):
        env["RIVERRUN_DATABASE_URL"] = database_url
    # SQLite: the default database, $RIVERRUN_HOME/riverrun.db, as users get it.
    if flush_interval is not None:
        env["RIVERRUN_FLUSH_INTERVAL"] = flush_interval
    processes = []
    for index in range(count):
        stderr = tmp_path / f"stderr-{index}.txt"
        with open(stderr, "wb") as stream:
            process = subprocess.Popen(
                [sys.executable, str(script), str(barrier), ending],
                stdout=subprocess.DEVNULL,
                stderr=stream,
                env=env,
                cwd=tmp_path,
            )
        processes.append((process, stderr))
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < count:
        failed = [p.returncode for p, _ in processes if p.poll() is not None]
        assert not failed, f"a process exited before the barrier: {failed}"
        assert time.monotonic() < deadline, "processes did not reach the barrier"
        time.sleep(0.01)
    (barrier / "go").touch()
    return processes


def wait_all(processes: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    """Every process exits 0 with no lock error and no traceback on stderr."""
    problems = []
    for process, stderr in processes:
        try:
            code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        text = stderr.read_text(errors="replace")
        if code != 0 or "database is locked" in text.lower() or "Traceback" in text:
            problems.append(f"pid {process.pid} exited {code}:\n{text[-3000:]}")
    assert not problems, "\n\n".join(problems)


def store_for(home: Path, database_url: str) -> AbstractContextManager[RunStore]:
    return riverrun_test_harness(
        home, database_url=None if database_url.startswith("sqlite") else database_url
    )


def assert_complete_runs(store: RunStore, expected_flow_runs: int) -> None:
    """``expected_flow_runs`` completed ``race`` runs, each with all its tasks and logs."""
    runs = store.read_flow_runs(flow_name="race")
    assert len(runs) == expected_flow_runs
    task_run_count = 0
    for run in runs:
        assert run.state is not None and run.state.is_completed(), run
        assert [s.name for s in store.read_states(run.id)] == ["Pending", "Running", "Completed"]
        task_runs = store.read_task_runs(run.id)
        assert sorted(t.dynamic_key for t in task_runs) == list(range(TASKS))
        for task_run in task_runs:
            assert task_run.state is not None and task_run.state.is_completed(), task_run
            history = [s.name for s in store.read_states(task_run.id)]
            assert history == ["Pending", "Running", "Completed"], (task_run.id, history)
        task_run_count += len(task_runs)
        messages = [entry.message for entry in store.read_logs(run.id)]
        assert f"racing with {TASKS} tasks" in messages
        assert sorted(m for m in messages if m.startswith("adding ")) == sorted(
            f"adding {i}" for i in range(TASKS)
        )
    assert task_run_count == expected_flow_runs * TASKS


def test_processes_racing_on_a_fresh_database_all_record_their_runs(
    tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "race-home"
    processes = start_processes(tmp_path, PROCESSES, home=home, database_url=database_url)
    wait_all(processes)
    with store_for(home, database_url) as store:
        assert_complete_runs(store, PROCESSES)


@pytest.mark.parametrize(
    ("ending", "flush_interval"),
    [
        pytest.param("return", None, id="exit-right-after-the-flow"),
        pytest.param("os._exit", "60", id="long-flush-interval-and-hard-exit"),
    ],
)
def test_a_process_exiting_right_after_its_flow_loses_nothing(
    tmp_path: Path, database_url: str, ending: str, flush_interval: str | None
) -> None:
    home = tmp_path / "exit-home"
    processes = start_processes(
        tmp_path,
        1,
        home=home,
        database_url=database_url,
        ending=ending,
        flush_interval=flush_interval,
    )
    wait_all(processes)
    with store_for(home, database_url) as store:
        assert_complete_runs(store, 1)
