"""A process killed with SIGKILL at a random point loses nothing it committed and leaves
nothing half-written; its run is then found Crashed.

The child (``_SCRIPT``, written to ``tmp_path``) runs one flow calling a task over and
over, in order. Its store is instrumented so that after each committed flush it prints
the highest task number whose Completed state that flush wrote. The test lets it run,
kills it at a random moment, and reads the SQLite file it left behind.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from riverrun.store.crashes import process_alive
from riverrun.store.writer import wait_for_writers
from riverrun.testing import riverrun_test_harness

REPORTS_BEFORE_KILL = 3

_SCRIPT = textwrap.dedent(
    """
    import time

    from riverrun import flow, task
    from riverrun.store import embedded, writer

    write = embedded.EmbeddedStore._write
    numbers = {}  # task run id -> i


    def report(events, verb):
        completed = []
        for event in events:
            if event[0] == embedded._TASK_RUN:
                row = event[1]  # statements.TASK_RUN_COLUMNS: id, flow run id, name, ...
                numbers[row[0]] = int(row[2][2:])
            elif event[0] == embedded._STATE and event[1] == "task" and event[3] == "COMPLETED":
                completed.append(event[2])
        if completed:
            print(verb, max(numbers[run_id] for run_id in completed), flush=True)


    def reporting_write(self, events):
        write(self, events)  # committed once this returns
        report(events, "committed")


    def reporting_confirmation(self, events):
        report(events, "confirmed")  # the writer process committed them


    embedded.EmbeddedStore._write = reporting_write
    writer.WriterProcess.committed = reporting_confirmation


    @task(task_run_name="t-{i}")
    def step(i: int) -> None:
        time.sleep(0.002)


    @flow(name="endless")
    def endless() -> None:
        for i in range(100_000):
            step(i)


    endless()
    """
)


def run_until_killed(
    tmp_path: Path, home: Path, delay: float, store_writer: str = "thread"
) -> tuple[int, int, set[str]]:
    """Run the child until it has reported a few commits, wait ``delay`` seconds, kill
    it with SIGKILL; return its pid, the highest task number it reported committed, and
    who reported ("committed": the child itself, "confirmed": its writer process)."""
    script = tmp_path / "endless.py"
    script.write_text(_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env.update(RIVERRUN_HOME=str(home), RIVERRUN_FLUSH_INTERVAL="0.05")
    env.update(RIVERRUN_STORE_WRITER=store_writer)
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    assert child.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reports: list[str] = []
    try:
        while len(reports) < REPORTS_BEFORE_KILL:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                line = None
            if line is None:
                pytest.fail(f"the child reported no commits:\n{stderr_path.read_text()}")
            reports.append(line)
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        # A writer process finishes what it was handed; the file is read after that.
        wait_for_writers(home, process_alive)
    reader.join(10)
    while (line := lines.get_nowait()) is not None:
        reports.append(line)
    child.stdout.close()
    # A line cut short by the kill was never completed; every whole line was printed
    # after its commit returned.
    whole = [line.split() for line in reports if line.endswith("\n")]
    return child.pid, max(int(number) for _, number in whole), {verb for verb, _ in whole}


def latest_state_names(db: sqlite3.Connection) -> dict[str, str]:
    """Each run's newest row in ``states``."""
    newest = "SELECT MAX(id) FROM states GROUP BY run_id"
    return dict(db.execute(f"SELECT run_id, name FROM states WHERE id IN ({newest})").fetchall())


def assert_consistent(db: sqlite3.Connection, context: str) -> None:
    """Every run's state columns name its latest state row: nothing half-written."""
    latest = latest_state_names(db)
    for table in ("flow_runs", "task_runs"):
        for run_id, name, state_name in db.execute(f"SELECT id, name, state_name FROM {table}"):
            assert latest.get(run_id) == state_name, (
                f"{context}: {table} row {name!r} says {state_name!r}, its latest state "
                f"row says {latest.get(run_id)!r}"
            )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("store_writer", "attempt"), [("thread", 0), ("thread", 1), ("process", 0), ("process", 1)]
)
def test_sigkill_loses_nothing_committed_and_corrupts_nothing(
    tmp_path: Path, store_writer: str, attempt: int
) -> None:
    """With a writer process the reports come from its confirmations; the kill hits
    the flow's process, and what it had handed over is still committed by the writer
    (the sweep waits for it), so the checks below hold the same way."""
    seed = random.randrange(2**32)
    # A writer process takes a moment to start (a fresh interpreter): kill later.
    low, high = (0.05, 0.5) if store_writer == "thread" else (0.5, 1.5)
    delay = random.Random(seed).uniform(low, high)
    home = tmp_path / "home-killed"
    pid, reported, reporters = run_until_killed(tmp_path, home, delay, store_writer)
    context = f"{store_writer} writer, seed {seed}, killed {delay:.3f}s after report"
    if store_writer == "process":
        assert "confirmed" in reporters, f"{context}: the writer process never took over"

    db = sqlite3.connect(home / "riverrun.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
        [(flow_run_id, flow_state)] = db.execute("SELECT id, state_name FROM flow_runs")
        assert flow_state == "Running", context
        rows = {
            int(name[2:]): (run_id, state_type, state_name)
            for run_id, name, state_type, state_name in db.execute(
                "SELECT id, name, state_type, state_name FROM task_runs"
            )
        }
        with_completed_row = {
            run_id
            for (run_id,) in db.execute(
                "SELECT DISTINCT run_id FROM states WHERE type = 'COMPLETED' AND name = 'Completed'"
            )
        }
        for i in range(reported + 1):
            assert i in rows, f"{context}: t-{i} was reported committed but is missing"
            run_id, state_type, state_name = rows[i]
            assert (state_type, state_name) == ("COMPLETED", "Completed"), f"{context}: t-{i}"
            assert run_id in with_completed_row, f"{context}: t-{i} has no Completed state row"
        completed = sorted(i for i, (_, state_type, _) in rows.items() if state_type == "COMPLETED")
        # A sequential flow: the completed runs are t-0..t-M, and at most t-(M+1) follows.
        assert completed == list(range(len(completed))), f"{context}: a gap in {completed}"
        last_completed = len(completed) - 1
        assert last_completed >= reported, context
        assert set(rows) <= set(range(last_completed + 2)), f"{context}: {sorted(rows)[-3:]}"
        assert_consistent(db, context)
    finally:
        db.close()

    with riverrun_test_harness(home) as store:
        assert store.mark_crashed_runs() == [flow_run_id], context
        run = store.read_flow_run(flow_run_id)
        assert run.state is not None and run.state.name == "Crashed", context
        assert run.pid == pid and run.state.message == f"Process {pid} on {run.hostname} is gone"
        for task_run in store.read_task_runs(flow_run_id):
            assert task_run.state is not None
            expected = "Completed" if int(task_run.name[2:]) <= last_completed else "Crashed"
            assert task_run.state.name == expected, f"{context}: {task_run.name}"
        assert store.mark_crashed_runs() == [], context

    db = sqlite3.connect(home / "riverrun.db")
    try:
        assert_consistent(db, f"{context}, after the sweep")
    finally:
        db.close()
