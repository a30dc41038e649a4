"""Console log shape, run loggers, log_prints, levels and colour."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from riverrun import flow, get_run_logger, task
from riverrun.exceptions import MissingContextError
from riverrun.names import ADJECTIVES, ANIMALS
from riverrun.store import RunStore

LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \| (\w+) *\| (.+?) - (.*)$")


def lines(text: str) -> list[tuple[str, str, str]]:
    found = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            found.append((match.group(2), match.group(3), match.group(4)))
    return found


def test_log_lines_in_the_seed_shape(capsys: pytest.CaptureFixture[str]) -> None:
    @task
    def fetch_data() -> list[int]:
        return [1]

    @flow(name="example-pipeline")
    def pipeline() -> list[int]:
        return fetch_data()

    pipeline()
    err = capsys.readouterr().err
    assert re.search(
        r"^\d\d:\d\d:\d\d\.\d{3} \| INFO    \| riverrun\.engine - Created flow run "
        r"'([a-z]+)-([a-z]+)' for flow 'example-pipeline'$",
        err,
        re.MULTILINE,
    ), err
    assert re.search(
        r"^\d\d:\d\d:\d\d\.\d{3} \| INFO    \| Task run 'fetch_data' - Finished in state "
        r"Completed\(\)$",
        err,
        re.MULTILINE,
    ), err
    name = re.search(r"Created flow run '([a-z]+-[a-z]+)'", err)
    assert name is not None
    adjective, animal = name.group(1).split("-")
    assert adjective in ADJECTIVES and animal in ANIMALS
    assert f"Flow run '{name.group(1)}' - Finished in state Completed()" in err


def test_retry_line(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[int] = []

    @task(retries=1, retry_delay_seconds=0.01)
    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("Simulated network failure")

    @flow
    def pipeline() -> None:
        flaky()

    pipeline()
    found = lines(capsys.readouterr().err)
    assert ("INFO", "Task run 'flaky'", "Retrying in 0.0 seconds...") in found


def test_get_run_logger_in_flows_and_tasks(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    @task
    def work() -> None:
        get_run_logger().warning("careful: %d", 3)

    @flow
    def pipeline() -> None:
        get_run_logger().info("starting")
        work()

    pipeline()
    found = lines(capsys.readouterr().err)
    assert ("WARNING", "Task run 'work'", "careful: 3") in found
    flow_lines = [f for f in found if f[2] == "starting"]
    assert flow_lines and flow_lines[0][1].startswith("Flow run '")
    [run] = store.read_flow_runs()
    logs = store.read_logs(run.id)
    assert [
        (log.level, log.message) for log in logs if log.message.startswith(("careful", "starting"))
    ] == [
        (20, "starting"),
        (30, "careful: 3"),
    ]
    task_log = next(log for log in logs if log.message == "careful: 3")
    assert task_log.task_run_id == store.read_task_runs(run.id)[0].id


def test_get_run_logger_outside_a_run_raises() -> None:
    with pytest.raises(MissingContextError, match="outside a flow or task run"):
        get_run_logger()


def test_log_prints_routes_print_and_tasks_inherit(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    @task
    def inherits() -> None:
        print("from inheriting task")

    @task(log_prints=False)
    def opts_out() -> None:
        print("plain print from task")

    @flow(log_prints=True)
    def pipeline() -> None:
        print("from flow", 42)
        print("to stderr", file=sys.stderr)
        inherits()
        opts_out()

    pipeline()
    captured = capsys.readouterr()
    found = lines(captured.err)
    assert ("INFO", "Task run 'inherits'", "from inheriting task") in found
    assert any(f[2] == "from flow 42" and f[1].startswith("Flow run") for f in found)
    assert "plain print from task\n" in captured.out
    assert "to stderr\n" in captured.err
    assert "from flow" not in captured.out
    [run] = store.read_flow_runs()
    assert "from inheriting task" in [log.message for log in store.read_logs(run.id)]


def test_print_is_untouched_without_log_prints(capsys: pytest.CaptureFixture[str]) -> None:
    @task(log_prints=True)
    def noisy() -> None:
        print("logged")

    @flow
    def pipeline() -> None:
        noisy()
        print("plain")

    pipeline()
    captured = capsys.readouterr()
    assert captured.out == "plain\n"
    assert ("INFO", "Task run 'noisy'", "logged") in lines(captured.err)


SCRIPT = textwrap.dedent(
    """
    from riverrun import flow, get_run_logger

    @flow
    def pipeline() -> None:
        get_run_logger().debug("debug detail")
        get_run_logger().info("info detail")

    pipeline()
    """
)


def run_script(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    environment = {**os.environ, "RIVERRUN_HOME": str(tmp_path / "home"), **env}
    if "NO_COLOR" not in env:
        environment.pop("NO_COLOR", None)
    return subprocess.run(
        [sys.executable, str(script)], env=environment, capture_output=True, text=True, check=True
    )


def test_logging_level_setting(tmp_path: Path) -> None:
    default = run_script(tmp_path)
    assert "info detail" in default.stderr and "debug detail" not in default.stderr
    debug = run_script(tmp_path, RIVERRUN_LOGGING_LEVEL="DEBUG")
    assert "| DEBUG   | " in debug.stderr and "debug detail" in debug.stderr
    quiet = run_script(tmp_path, RIVERRUN_LOGGING_LEVEL="WARNING")
    assert "info detail" not in quiet.stderr


def test_no_colour_when_not_a_tty(tmp_path: Path) -> None:
    result = run_script(tmp_path)
    assert "\x1b[" not in result.stderr


def test_colour_on_a_tty_unless_no_color(tmp_path: Path) -> None:
    import pty

    script = tmp_path / "script.py"
    script.write_text(SCRIPT)

    def run_on_tty(extra: dict[str, str]) -> str:
        env = {**os.environ, "RIVERRUN_HOME": str(tmp_path / "home"), **extra}
        if "NO_COLOR" not in extra:
            env.pop("NO_COLOR", None)
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=follower, stderr=follower
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=30)
        os.close(leader)
        return b"".join(chunks).decode()

    assert "\x1b[36mINFO   \x1b[0m" in run_on_tty({})
    assert "\x1b[" not in run_on_tty({"NO_COLOR": "1"})


def test_bad_logging_level_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "RIVERRUN_HOME": str(tmp_path / "home"), "RIVERRUN_LOGGING_LEVEL": "LOUD"}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "RIVERRUN_LOGGING_LEVEL='LOUD' is not a logging level" in result.stderr


def _engine_lines(err: str) -> list[str]:
    # The lines without their clock: "INFO    | Task run 'x' - Finished in state ..."
    return [line.split(" | ", 1)[1] for line in err.splitlines() if " | " in line]


def test_engine_lines_are_the_same_when_another_handler_listens(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    @task
    def step() -> int:
        return 1

    @flow
    def pipeline() -> int:
        return step()

    pipeline()
    alone = _engine_lines(capsys.readouterr().err)
    seen: list[logging.LogRecord] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    recorder = Recorder()
    logging.getLogger("riverrun.task_runs").addHandler(recorder)
    try:
        pipeline()
    finally:
        logging.getLogger("riverrun.task_runs").removeHandler(recorder)
    watched = _engine_lines(capsys.readouterr().err)
    # The same lines (bar run names), whether riverrun's handlers alone listen or not.
    strip = re.compile(r"'[a-z]+-[a-z]+'")
    assert [strip.sub("NAME", line) for line in alone] == [
        strip.sub("NAME", line) for line in watched
    ]
    # The extra handler saw the engine's task line as a full record.
    assert [r.getMessage() for r in seen] == ["Finished in state Completed()"]
    assert getattr(seen[0], "label") == "Task run 'step'"  # noqa: B009
    first, second = store.read_flow_runs()[::-1]
    logged = [
        [(entry.level, entry.logger, entry.message) for entry in store.read_logs(run.id)]
        for run in (first, second)
    ]
    assert [strip.sub("NAME", str(line)) for line in logged[0]] == [
        strip.sub("NAME", str(line)) for line in logged[1]
    ]
