"""``riverrun cache clear``: entries and their files go, the next call computes again."""

from __future__ import annotations

from pathlib import Path

import pytest

from riverrun import flow, task
from riverrun.cache_policies import INPUTS
from riverrun.cli.main import main
from riverrun.settings import get_settings
from riverrun.store import RunStore

calls: list[str] = []


@task(cache_policy=INPUTS)
def fetch(url: str) -> str:
    calls.append(url)
    return url.upper()


@task(cache_policy=INPUTS)
def parse(text: str) -> int:
    calls.append(text)
    return len(text)


@flow
def pipeline() -> None:
    fetch("a")
    fetch("b")
    parse("xyz")


def result_files() -> list[Path]:
    storage = get_settings().home / "storage"
    return [p for p in storage.iterdir() if p.is_file() and not p.name.startswith(".")]


@pytest.fixture(autouse=True)
def cached() -> None:
    calls.clear()
    pipeline()
    pipeline()
    assert calls == ["a", "b", "xyz"]
    assert len(result_files()) == 3


def test_clear_by_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "clear", "--task", "fetch"]) == 0
    assert "Removed 2 cache entries of task 'fetch' and 2 result files" in capsys.readouterr().out
    assert len(result_files()) == 1
    pipeline()
    assert calls == ["a", "b", "xyz", "a", "b"]


def test_clear_by_key(capsys: pytest.CaptureFixture[str], store: RunStore) -> None:
    latest = store.read_flow_runs(limit=1)[0]
    (key,) = [t.cache_key for t in store.read_task_runs(latest.id) if t.task_name == "parse"]
    assert key is not None
    assert main(["cache", "clear", "--key", key]) == 0
    assert f"Removed 1 cache entry with key {key!r} and 1 result file" in capsys.readouterr().out
    pipeline()
    assert calls == ["a", "b", "xyz", "xyz"]


def test_clear_everything_and_nothing_left(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "clear"]) == 0
    assert "Removed 3 cache entries and 3 result files" in capsys.readouterr().out
    assert result_files() == []
    assert main(["cache", "clear", "--task", "nope"]) == 0
    assert "Removed 0 cache entries of task 'nope'" in capsys.readouterr().out
