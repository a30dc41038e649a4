"""``riverrun flow-run ls / inspect / logs`` over runs made the way a user makes them."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from riverrun import __version__, flow, task
from riverrun.cli.main import main
from riverrun.cli.output import format_duration, table
from riverrun.settings import get_settings
from riverrun.store import RunStore

Capture = pytest.CaptureFixture[str]

START = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
CLOCK = r"\d\d:\d\d:\d\d\.\d{3}"


@task
def extract(source: str) -> list[int]:
    return [1, 2, 3]


@task
def load(rows: list[int]) -> int:
    return len(rows)


@flow
def etl(source: str, batch_size: int = 10) -> int:
    return load.submit(extract.submit(source)).result()


@flow
def explode() -> None:
    raise ValueError("the pipeline broke")


@flow(timeout_seconds=0.1)
def dawdle() -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.01)


@flow
def child(x: int) -> int:
    return x * 2


@flow
def parent() -> int:
    return child(21)


def latest_id(store: RunStore) -> str:
    """The id of the newest flow run (the one just made)."""
    return store.read_flow_runs(limit=1)[0].id


def run_etl(store: RunStore, source: str = "s3://bucket/data.csv") -> str:
    assert etl(source, batch_size=5) == 3
    return latest_id(store)


def run_explode(store: RunStore) -> str:
    with pytest.raises(ValueError, match="the pipeline broke"):
        explode()
    return latest_id(store)


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    """Run ``riverrun ARGV`` in-process; return the exit code, stdout and stderr."""
    capsys.readouterr()  # drop the engine's console output from making the runs
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ls_rows(out: str) -> list[list[str]]:
    """The ``ls`` table split into cells (header excluded)."""
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "NAME", "FLOW", "STATE", "START", "DURATION"]
    return [re.split(r"\s{2,}", row.strip()) for row in rows]


# -- --version and usage ------------------------------------------------------------------


def test_version(capsys: Capture) -> None:
    code, out, _ = cli(capsys, "--version")
    assert code == 0
    assert out == f"riverrun {__version__}\n"


@pytest.mark.parametrize(
    "argv",
    [[], ["flow-run"], ["flow-run", "bogus"], ["flow-run", "ls", "--limit", "0"],
     ["flow-run", "ls", "--limit", "many"], ["flow-run", "inspect"]],
)  # fmt: skip
def test_bad_arguments_are_usage_errors(capsys: Capture, argv: list[str]) -> None:
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("usage: riverrun")
    assert "Traceback" not in err


# -- ls -----------------------------------------------------------------------------------


def test_ls_lists_runs_newest_first_with_full_ids(store: RunStore, capsys: Capture) -> None:
    made = [run_etl(store), run_explode(store), run_etl(store)]

    code, out, err = cli(capsys, "flow-run", "ls")

    assert (code, err) == (0, "")
    rows = ls_rows(out)
    assert [row[0] for row in rows] == made[::-1]
    newest = store.read_flow_run(made[2])
    assert rows[0][1:4] == [newest.name, "etl", "Completed"]
    assert rows[1][2:4] == ["explode", "Failed"]
    for row in rows:
        assert re.fullmatch(START, row[4])
        assert re.fullmatch(r"\d+\.\ds", row[5])


def test_ls_empty(capsys: Capture) -> None:
    assert cli(capsys, "flow-run", "ls") == (0, "No flow runs found.\n", "")


def test_ls_limit(store: RunStore, capsys: Capture) -> None:
    made = [run_etl(store, f"source-{i}") for i in range(22)]

    _, out, _ = cli(capsys, "flow-run", "ls", "--limit", "2")
    assert [row[0] for row in ls_rows(out)] == made[:-3:-1]

    _, out, _ = cli(capsys, "flow-run", "ls")
    assert [row[0] for row in ls_rows(out)] == made[::-1][:20]


def test_ls_filters_by_state_name_or_type_in_any_case(store: RunStore, capsys: Capture) -> None:
    completed = run_etl(store)
    failed = run_explode(store)
    with pytest.raises(TimeoutError):
        dawdle()
    timed_out = latest_id(store)

    def listed(*states: str) -> set[str]:
        argv = [part for state in states for part in ("--state", state)]
        code, out, err = cli(capsys, "flow-run", "ls", *argv)
        assert (code, err) == (0, "")
        return {row[0] for row in ls_rows(out)}

    assert listed("completed") == {completed}
    # "failed" is a name (Failed) and a type (FAILED, which TimedOut has too).
    assert listed("Failed") == listed("FAILED") == {failed, timed_out}
    assert listed("timedout") == listed("TimedOut") == {timed_out}
    assert listed("COMPLETED", "failed") == {completed, failed, timed_out}
    assert cli(capsys, "flow-run", "ls", "--state", "RUNNING")[1] == "No flow runs found.\n"


def test_ls_filters_by_flow(store: RunStore, capsys: Capture) -> None:
    etl_runs = {run_etl(store), run_etl(store)}
    run_explode(store)

    _, out, _ = cli(capsys, "flow-run", "ls", "--flow", "etl")
    rows = ls_rows(out)
    assert {row[0] for row in rows} == etl_runs
    assert {row[2] for row in rows} == {"etl"}
    assert cli(capsys, "flow-run", "ls", "--flow", "nope")[1] == "No flow runs found.\n"


# -- inspect ------------------------------------------------------------------------------


def test_inspect_shows_parameters_states_and_task_runs(store: RunStore, capsys: Capture) -> None:
    run_id = run_etl(store)
    run = store.read_flow_run(run_id)

    code, out, err = cli(capsys, "flow-run", "inspect", run_id)

    assert (code, err) == (0, "")
    assert out.startswith(f"Flow run {run.name!r}\n")
    assert re.search(rf"^  ID:\s+{run_id}$", out, re.M)
    assert re.search(r"^  Flow:\s+etl$", out, re.M)
    assert re.search(r"^  State:\s+Completed$", out, re.M)
    assert re.search(r"^  Run count:\s+1$", out, re.M)
    assert re.search(rf"^  Start:\s+{START}$", out, re.M)
    assert re.search(r"^  Duration:\s+\d+\.\ds$", out, re.M)
    assert "Parent flow run" not in out
    parameters = '  {\n    "source": "s3://bucket/data.csv",\n    "batch_size": 5\n  }'
    assert f"Parameters:\n{parameters}\n" in out
    history = out.split("State history:\n")[1].split("\n\n")[0].splitlines()
    assert history[0].split() == ["TIME", "TYPE", "NAME", "MESSAGE"]
    transitions = [line.split()[2:4] for line in history[1:]]
    assert ["RUNNING", "Running"] in transitions
    assert transitions[-1] == ["COMPLETED", "Completed"]
    assert all(re.match(rf"  {START}\.\d{{3}}  ", line) for line in history[1:])
    task_lines = out.split("Task runs:\n")[1].splitlines()
    assert re.split(r"\s{2,}", task_lines[0].strip()) == [
        "NAME",
        "TASK",
        "STATE",
        "START",
        "DURATION",
        "WAITED FOR",
        "SUBFLOW RUN",
    ]
    rows = [re.split(r"\s{2,}", line.strip()) for line in task_lines[1:]]
    assert [row[1:3] for row in rows] == [["extract", "Completed"], ["load", "Completed"]]
    assert rows[0][5] == "-"
    assert rows[1][5] == rows[0][0]  # load waited for extract's run


def test_inspect_failed_run_shows_the_message(store: RunStore, capsys: Capture) -> None:
    run_id = run_explode(store)

    _, out, _ = cli(capsys, "flow-run", "inspect", run_id)

    assert re.search(r"^  State:\s+Failed: .*ValueError: the pipeline broke$", out, re.M)
    assert re.search(r"^  \S+ \S+\s+FAILED\s+Failed\s+.*the pipeline broke$", out, re.M)
    assert "Task runs:\n  (none)" in out


def test_inspect_links_a_subflow_and_its_parent(store: RunStore, capsys: Capture) -> None:
    assert parent() == 42
    child_run, parent_run = store.read_flow_runs()
    assert (child_run.flow_name, parent_run.flow_name) == ("child", "parent")

    _, out, _ = cli(capsys, "flow-run", "inspect", parent_run.id)
    assert re.search(rf"^  \S+\s+child\s+Completed\s+.*\s{child_run.id}$", out, re.M)

    _, out, _ = cli(capsys, "flow-run", "inspect", child_run.id)
    assert re.search(rf"^  Parent flow run:\s+{parent_run.id}$", out, re.M)
    assert '"x": 21' in out


def test_inspect_accepts_a_unique_prefix(store: RunStore, capsys: Capture) -> None:
    run_id = run_etl(store)
    code, out, _ = cli(capsys, "flow-run", "inspect", run_id[:8])
    assert code == 0
    assert re.search(rf"^  ID:\s+{run_id}$", out, re.M)


# -- logs ---------------------------------------------------------------------------------


def test_logs_print_the_console_shape_in_order(store: RunStore, capsys: Capture) -> None:
    run_id = run_etl(store)
    name = store.read_flow_run(run_id).name

    code, out, err = cli(capsys, "flow-run", "logs", run_id)

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert all(re.match(rf"{CLOCK} \| [A-Z]+ *\| ", line) for line in lines)
    assert re.fullmatch(
        rf"{CLOCK} \| INFO    \| Flow run '{re.escape(name)}' - Finished in state Completed\(\)",
        lines[-1],
    )
    task_finished = [line for line in lines if "Task run 'extract'" in line]
    assert len(task_finished) == 1
    assert re.fullmatch(
        rf"{CLOCK} \| INFO    \| Task run 'extract' - Finished in state Completed\(\)",
        task_finished[0],
    )
    assert lines.index(task_finished[0]) < len(lines) - 1


def test_logs_of_a_failed_run_show_errors(store: RunStore, capsys: Capture) -> None:
    run_id = run_explode(store)
    _, out, _ = cli(capsys, "flow-run", "logs", run_id)
    assert re.search(
        rf"^{CLOCK} \| ERROR   \| Flow run '.+' - Finished in state Failed\(.*the pipeline broke",
        out,
        re.M,
    )


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["inspect", "logs"])
@pytest.mark.parametrize("run_id", ["nope-not-a-run", "abc"])
def test_unknown_id_is_one_line_and_exit_1(
    store: RunStore, capsys: Capture, command: str, run_id: str
) -> None:
    real = run_etl(store)
    if run_id == "abc":
        run_id = real[:3]  # a real run's prefix, but too short to be trusted

    code, out, err = cli(capsys, "flow-run", command, run_id)

    assert code == 1
    assert out == ""
    assert err == f"Error: no flow run with id {run_id!r}\n"


def test_database_error_is_one_line_with_the_password_hidden(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1, so the connection is refused at once.
    monkeypatch.setenv("RIVERRUN_DATABASE_URL", "postgresql://bob:s3cret@127.0.0.1:1/runs")

    code, out, err = cli(capsys, "flow-run", "ls")

    assert (code, out) == (1, "")
    assert err.startswith("Error: could not open the database at postgresql://bob:***@127.0.0.1")
    assert err.count("\n") == 1
    assert "s3cret" not in err


def test_unusable_sqlite_path_is_one_line(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RIVERRUN_DATABASE_URL", f"sqlite:///{blocker}/riverrun.db")

    code, _, err = cli(capsys, "flow-run", "ls")

    assert code == 1
    assert re.fullmatch(r"Error: could not open the database at sqlite:///.*a-file.*\n", err)


def test_a_database_that_cannot_be_read_is_one_line(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Opened at the head revision, then missing the table ``logs`` reads (through
    # sqlite3, as the embedded store reads a flow run on SQLite).
    database = tmp_path / "broken.db"
    monkeypatch.setenv("RIVERRUN_DATABASE_URL", f"sqlite:///{database}")
    assert cli(capsys, "flow-run", "ls")[0] == 0
    connection = sqlite3.connect(database)
    connection.execute("DROP TABLE flow_runs")
    connection.close()

    code, out, err = cli(capsys, "flow-run", "logs", "0123abcd")

    assert (code, out) == (1, "")
    assert re.fullmatch(
        r"Error: could not read the database at sqlite:///.*broken\.db: no such table: "
        r"flow_runs\n",
        err,
    )


# -- formatting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.0001, "0.0s"), (1.24, "1.2s"), (59.94, "59.9s"), (59.96, "1m 0s"),
     (184.4, "3m 4s"), (7205, "2h 0m 5s")],
)  # fmt: skip
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_table_fits_columns_to_content_without_trailing_blanks() -> None:
    assert table(["A", "LONG"], [["wide-cell", "x"], ["y", ""]]) == (
        "A          LONG\nwide-cell  x\ny"
    )


# -- end to end ---------------------------------------------------------------------------


def test_python_dash_m_riverrun_lists_a_run(store: RunStore) -> None:
    run_id = run_etl(store)
    store.flush()
    env = {**os.environ, "RIVERRUN_HOME": str(get_settings().home)}
    env.pop("RIVERRUN_DATABASE_URL", None)

    result = subprocess.run(
        [sys.executable, "-m", "riverrun", "flow-run", "ls"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = ls_rows(result.stdout)
    assert [row[0] for row in rows] == [run_id]
    assert rows[0][2:4] == ["etl", "Completed"]
