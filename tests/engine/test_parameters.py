"""Parameters: validation and coercion from hints, storage, run names and tags."""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from riverrun import flow, tags, task
from riverrun.exceptions import ParameterTypeError
from riverrun.store import RunStore


def test_parameters_are_coerced_from_type_hints(store: RunStore) -> None:
    seen: list[object] = []

    @flow
    def pipeline(count: int, when: datetime.date, ratio: float = 0.5) -> None:
        seen.extend([count, when, ratio])

    pipeline("5", "2026-11-21")  # type: ignore[call-overload]
    assert seen == [5, datetime.date(2026, 11, 21), 0.5]
    [run] = store.read_flow_runs()
    assert run.parameters == {"count": 5, "when": "2026-11-21", "ratio": 0.5}


def test_bad_parameter_fails_before_the_body_and_names_it(store: RunStore) -> None:
    ran: list[bool] = []

    @flow
    def pipeline(count: int, url: str = "x") -> None:
        ran.append(True)

    with pytest.raises(ParameterTypeError) as caught:
        pipeline("many")  # type: ignore[call-overload]
    message = str(caught.value)
    assert "count='many'" in message and "pipeline" in message
    assert caught.value.errors[0][:2] == ("count", "many")
    assert ran == []
    [run] = store.read_flow_runs()
    assert run.state is not None and run.state.is_failed()
    assert run.state.message is not None and "count='many'" in run.state.message


def test_validate_parameters_false_skips_validation() -> None:
    @flow(validate_parameters=False)
    def pipeline(count: int) -> object:
        return count

    assert pipeline("not a number") == "not a number"  # type: ignore[call-overload]


def test_parameters_that_are_not_json_are_stored_as_repr(store: RunStore) -> None:
    @dataclass
    class Point:
        x: int
        y: int

    lock = threading.Lock()

    @flow
    def pipeline(point: Point, handle: object, values: dict[str, float]) -> None:
        pass

    pipeline(Point(1, 2), lock, {"a": float("nan"), "b": 1.5})
    [run] = store.read_flow_runs()
    assert run.parameters["point"] == {"x": 1, "y": 2}
    assert run.parameters["handle"] == repr(lock)
    assert run.parameters["values"] == {"a": "nan", "b": 1.5}


def test_flow_run_name_template_and_callable(store: RunStore) -> None:
    @flow(flow_run_name="nightly-{day}")
    def nightly(day: str) -> None:
        pass

    @flow(flow_run_name=lambda: "from-callable")
    def other() -> None:
        pass

    nightly("monday")
    other()
    assert sorted(run.name for run in store.read_flow_runs()) == ["from-callable", "nightly-monday"]

    @flow(flow_run_name="run-{missing}")
    def broken(day: str) -> None:
        pass

    with pytest.raises(ValueError, match="missing"):
        broken("x")


def test_task_run_names(store: RunStore) -> None:
    @task(task_run_name="fetch-{source}")
    def fetch(source: str) -> None:
        pass

    @task
    def plain() -> None:
        pass

    @flow
    def pipeline() -> None:
        fetch("s3")
        plain()

    pipeline()
    [run] = store.read_flow_runs()
    names = sorted(t.name for t in store.read_task_runs(run.id))
    assert names[0] == "fetch-s3"

    @task(task_run_name="fetch-{nope}")
    def broken(source: str) -> None:
        pass

    @flow
    def bad() -> None:
        broken("x")

    with pytest.raises(ValueError, match="nope"):
        bad()
    assert names[0] == "fetch-s3"
    assert names[1].startswith("plain-") and len(names[1]) == len("plain-") + 3


def test_tags_are_stored_with_runs(store: RunStore) -> None:
    @task(tags=["io"])
    def load() -> None:
        pass

    @flow(tags=["etl"])
    def pipeline() -> None:
        with tags("inner"):
            load()

    with tags("nightly", "eu"):
        pipeline()
    [run] = store.read_flow_runs()
    assert run.tags == ["nightly", "eu", "etl"]
    [task_run] = store.read_task_runs(run.id)
    assert task_run.tags == ["nightly", "eu", "inner", "io"]
    with pytest.raises(ValueError, match="non-empty strings"), tags(""):
        pass


_PLAIN_VALUES = """
import sys
from riverrun import flow

@flow
def plain(n: int, name: str, ratio: float = 0.5, on: bool = True) -> int:
    return n

assert plain(3, "x") == 3
print("pydantic" in sys.modules)
assert plain("4", "x") == 4  # a value that needs coercion still gets it
print("pydantic" in sys.modules)
"""


def test_values_that_already_fit_their_plain_hints_skip_pydantic(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "plain.py"
    script.write_text(_PLAIN_VALUES)
    env = {**os.environ, "RIVERRUN_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
