"""``riverrun config set / unset / view`` and the profile they keep under RIVERRUN_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from riverrun.cli.main import main
from riverrun.settings import get_settings, profile_path, temporary_settings

Capture = pytest.CaptureFixture[str]


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def view(capsys: Capture) -> dict[str, str]:
    code, out, _ = cli(capsys, "config", "view")
    assert code == 0
    return dict(line.split("=", 1) for line in out.splitlines())


def test_set_view_unset(capsys: Capture) -> None:
    url = "postgresql+psycopg://app:s3cret@db.internal/runs"
    code, out, err = cli(
        capsys, "config", "set", "RIVERRUN_LOGGING_LEVEL=WARNING", f"RIVERRUN_DATABASE_URL={url}"
    )
    assert (code, err) == (0, "")
    assert "s3cret" not in out and "app:***@db.internal" in out
    assert profile_path().read_text().count("RIVERRUN_") == 2
    settings = get_settings()
    assert settings.logging_level == "WARNING"
    assert settings.database_url == url  # stored whole, only shown hidden
    shown = view(capsys)
    assert shown["RIVERRUN_LOGGING_LEVEL"] == "'WARNING' (profile)"
    assert (
        shown["RIVERRUN_DATABASE_URL"]
        == "'postgresql+psycopg://app:***@db.internal/runs' (profile)"
    )
    assert shown["RIVERRUN_FLUSH_INTERVAL"] == "'0.2' (default)"

    code, out, _ = cli(capsys, "config", "unset", "RIVERRUN_DATABASE_URL", "RIVERRUN_API_URL")
    assert code == 0
    assert "Unset RIVERRUN_DATABASE_URL" in out and "RIVERRUN_API_URL was not set" in out
    assert get_settings().database_url.startswith("sqlite:///")
    assert get_settings().logging_level == "WARNING"


def test_the_environment_wins_over_the_profile(capsys: Capture) -> None:
    assert cli(capsys, "config", "set", "RIVERRUN_FLUSH_INTERVAL=5")[0] == 0
    assert get_settings().flush_interval == 5
    with temporary_settings(flush_interval="0.5"):
        assert get_settings().flush_interval == 0.5
        assert view(capsys)["RIVERRUN_FLUSH_INTERVAL"] == "'0.5' (env)"
        _, out, _ = cli(capsys, "config", "set", "RIVERRUN_FLUSH_INTERVAL=7")
        assert "the environment sets it too, and wins" in out


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("RIVERRUN_LOGGING_LEVEL=LOUD", "is not a logging level"),
        ("RIVERRUN_FLUSH_INTERVAL=soon", "is not a number of seconds"),
        ("RIVERRUN_WRITER_GIVE_UP_AFTER=0", "must be a positive number of seconds"),
        ("RIVERRUN_API_URL=localhost:4200", "must be an http:// or https:// URL"),
        ("RIVERRUN_HOME=/elsewhere", "'RIVERRUN_HOME' is not a setting"),
        ("NOT_A_SETTING=1", "'NOT_A_SETTING' is not a setting"),
        ("RIVERRUN_LOGGING_LEVEL", "is not KEY=VALUE"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_written(
    capsys: Capture, assignment: str, message: str
) -> None:
    assert cli(capsys, "config", "set", "RIVERRUN_LOGGING_LEVEL=DEBUG")[0] == 0
    before = profile_path().read_text()
    code, _, err = cli(capsys, "config", "set", "RIVERRUN_FLUSH_INTERVAL=1", assignment)
    assert code == 1
    assert message in err and err.startswith("Error: ")
    assert profile_path().read_text() == before


def test_a_broken_profile_is_a_clear_error(capsys: Capture) -> None:
    profile_path().parent.mkdir(parents=True, exist_ok=True)
    profile_path().write_text("RIVERRUN_LOGGING_LEVEL = [\n")
    for argv in (("config", "view"), ("flow-run", "ls")):
        code, _, err = cli(capsys, *argv)
        assert code == 1
        assert "is not valid TOML" in err and str(profile_path()) in err
    profile_path().write_text('SOMETHING_ELSE = "x"\n')
    code, _, err = cli(capsys, "config", "view")
    assert code == 1 and "'SOMETHING_ELSE', which is not a setting" in err


_FLOW = """
from riverrun import flow

@flow
def quiet() -> int:
    return 1

quiet()
"""


def test_flows_in_other_processes_use_the_profile(capsys: Capture, tmp_path: Path) -> None:
    assert cli(capsys, "config", "set", "RIVERRUN_LOGGING_LEVEL=WARNING")[0] == 0
    script = tmp_path / "quiet.py"
    script.write_text(_FLOW)
    env = {k: v for k, v in os.environ.items() if k != "RIVERRUN_LOGGING_LEVEL"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "INFO" not in done.stderr
