"""``import riverrun`` stays light: no server, web framework, migrations or database."""

from __future__ import annotations

import json
import subprocess
import sys

import riverrun

HEAVY = (
    "fastapi",
    "uvicorn",
    "starlette",
    "alembic",
    "riverrun.server",
    "sqlalchemy",
    "pydantic",
    "cloudpickle",
    "distributed",
    "multiprocessing",
)


def test_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, json, riverrun; "
        "from riverrun import flow, task, get_run_logger, tags, State; "
        "import riverrun.futures, riverrun.states, riverrun.tasks; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(output)
    offenders = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert offenders == []


def test_public_names() -> None:
    assert set(riverrun.__all__) >= {"flow", "task", "get_run_logger", "tags", "State"}
    assert riverrun.__version__
