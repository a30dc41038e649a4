"""``flow-run ls`` and ``inspect`` show a run whose process was killed as Crashed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from riverrun import flow
from riverrun.cli.main import main
from riverrun.store import RunStore
from riverrun.store.embedded import EmbeddedStore

Capture = pytest.CaptureFixture[str]

_SCRIPT = textwrap.dedent(
    """
    import time

    from riverrun import flow, task


    @task
    def wait_forever() -> None:
        print("started", flush=True)
        time.sleep(600)


    @flow(name="doomed")
    def doomed() -> None:
        wait_forever()


    doomed()
    """
)


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def start_doomed_flow(tmp_path: Path, store: RunStore) -> subprocess.Popen[str]:
    """A process (on this test's home) whose flow runs a task that never ends; returns
    once the task's Running state is recorded."""
    script = tmp_path / "doomed.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "RIVERRUN_FLUSH_INTERVAL": "0.05"}
    process = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "started\n"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = store.read_flow_runs(flow_name="doomed")
        task_runs = store.read_task_runs(runs[0].id) if runs else []
        if task_runs and task_runs[0].state is not None and task_runs[0].state.is_running():
            return process
        time.sleep(0.02)
    process.kill()
    pytest.fail("the doomed flow never recorded its running task")


def test_ls_and_inspect_show_a_killed_run_as_crashed(
    store: RunStore, capsys: Capture, tmp_path: Path
) -> None:
    process = start_doomed_flow(tmp_path, store)
    try:
        code, out, err = cli(capsys, "flow-run", "ls")
        assert (code, err) == (0, "")
        assert re.search(r"\bdoomed\s+Running\b", out), "a live run was taken for crashed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.stdout is not None
        process.stdout.close()

    code, out, err = cli(capsys, "flow-run", "ls")
    assert (code, err) == (0, "")
    assert re.search(r"\bdoomed\s+Crashed\b", out), out

    [run] = store.read_flow_runs(flow_name="doomed")
    code, out, err = cli(capsys, "flow-run", "inspect", run.id)
    assert (code, err) == (0, "")
    reason = f"Process {process.pid} on {socket.gethostname()} is gone"
    assert re.search(rf"^  State:\s+Crashed: {re.escape(reason)}$", out, re.M), out
    assert re.search(rf"^  Process:\s+{process.pid} on ", out, re.M)
    assert re.search(r"\bCRASHED\s+Crashed\s+Process ", out)
    assert re.search(r"^  wait_forever-\S+\s+wait_forever\s+Crashed\b", out, re.M), out


def test_a_failing_sweep_does_not_stop_ls_or_inspect(
    store: RunStore, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(self: EmbeddedStore) -> list[str]:
        raise OperationalError("UPDATE flow_runs", {}, Exception("database is locked"))

    monkeypatch.setattr(EmbeddedStore, "mark_crashed_runs", unavailable)

    @flow(name="fine")
    def fine() -> int:
        return 1

    assert fine() == 1
    [run] = store.read_flow_runs()
    code, out, err = cli(capsys, "flow-run", "ls")
    assert (code, err) == (0, "")
    assert re.search(r"\bfine\s+Completed\b", out)
    code, out, err = cli(capsys, "flow-run", "inspect", run.id)
    assert (code, err) == (0, "")
    assert "Traceback" not in out
