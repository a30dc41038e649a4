"""``riverrun concurrency-limit create | ls | inspect | update | reset | delete``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from riverrun.cli.main import main
from riverrun.concurrency.sync import concurrency
from riverrun.store import RunStore

Capture = pytest.CaptureFixture[str]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_then_ls_and_inspect_show_holders(store: RunStore, capsys: Capture) -> None:
    assert run(capsys, "concurrency-limit", "create", "external-api", "5") == (
        0,
        "Created concurrency limit 'external-api' with 5 slot(s)\n",
        "",
    )
    code, out, _ = run(
        capsys, "concurrency-limit", "create", "search", "10", "--slot-decay-per-second", "2.5"
    )
    assert code == 0 and "decaying 2.5 slot(s) per second" in out

    with concurrency("external-api", occupy=2):
        code, out, _ = run(capsys, "concurrency-limit", "ls")
        assert code == 0
        lines = out.splitlines()
        assert lines[0].split() == ["NAME", "LIMIT", "ACTIVE", "DECAY/S", "WAITING", "HOLDERS"]
        assert re.match(rf"external-api +5 +2 +0 +0 +\S+:{os.getpid()} \(no run\)$", lines[1])
        assert re.match(r"search +10 +0 +2\.5 +0 +-$", lines[2])

        code, out, _ = run(capsys, "concurrency-limit", "inspect", "external-api")
        assert code == 0
        assert "Concurrency limit 'external-api'" in out
        assert re.search(r"active slots: +2\n", out)
        assert re.search(rf"\n\S{{36}} +2 +- +- +\S+ +{os.getpid()} +\d{{4}}-", out)


def test_update_reset_and_delete(store: RunStore, capsys: Capture) -> None:
    run(capsys, "concurrency-limit", "create", "db", "1")
    code, out, _ = run(capsys, "concurrency-limit", "update", "db", "--limit", "3")
    assert (code, out) == (
        0,
        "Updated concurrency limit 'db': 3 slot(s), slot decay 0 per second\n",
    )
    code, out, _ = run(capsys, "concurrency-limit", "update", "db", "--slot-decay-per-second", "4")
    assert code == 0 and "3 slot(s), slot decay 4 per second" in out
    assert store.read_concurrency_limit("db").slot_decay_per_second == 4

    with concurrency("db", occupy=2):
        assert run(capsys, "concurrency-limit", "reset", "db")[:2] == (
            0,
            "Reset concurrency limit 'db': every slot is free\n",
        )
        assert store.read_concurrency_limit("db").active_slots == 0
    assert run(capsys, "concurrency-limit", "delete", "db")[:2] == (
        0,
        "Deleted concurrency limit 'db'\n",
    )
    assert run(capsys, "concurrency-limit", "ls")[1] == "No concurrency limits.\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inspect", "nope"], "No concurrency limit named 'nope'"),
        (["update", "nope", "--limit", "2"], "No concurrency limit named 'nope'"),
        (["reset", "nope"], "No concurrency limit named 'nope'"),
        (["delete", "nope"], "No concurrency limit named 'nope'"),
        (["update", "db"], "nothing to update"),
        (["create", "db", "2"], "'db' exists already"),
        (["create", " db", "2"], "surrounding blanks"),
    ],
)
def test_mistakes_are_one_line_errors(
    store: RunStore, capsys: Capture, argv: list[str], message: str
) -> None:
    store.create_concurrency_limit("db", 1)
    code, out, err = run(capsys, "concurrency-limit", *argv)
    assert (code, out) == (1, "")
    assert err.startswith("Error: ") and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "db", "-1"],
        ["create", "db", "many"],
        ["create", "db", "1", "--slot-decay-per-second", "fast"],
        ["update", "db", "--limit", "x"],
    ],
)
def test_bad_numbers_are_usage_errors(store: RunStore, capsys: Capture, argv: list[str]) -> None:
    code, _, err = run(capsys, "concurrency-limit", *argv)
    assert code == 2 and "concurrency-limit" in err


def test_the_command_line_program(tmp_path: Path) -> None:
    env = {**os.environ, "RIVERRUN_HOME": str(tmp_path / "home")}
    env.pop("RIVERRUN_DATABASE_URL", None)
    created = subprocess.run(
        [sys.executable, "-m", "riverrun", "concurrency-limit", "create", "external-api", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "riverrun", "concurrency-limit", "ls"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and "external-api  5" in listed.stdout
