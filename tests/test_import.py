"""``import riverrun`` stays light: no server, web framework, migrations or database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import riverrun

HEAVY = (
    "fastapi",
    "httpx",
    "riverrun.store.http",
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


def test_a_flow_recorded_embedded_loads_no_server_or_http_client(tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "from riverrun import flow, task\n"
        "@task\n"
        "def one() -> int:\n"
        "    return 1\n"
        "@flow\n"
        "def f() -> int:\n"
        "    return one()\n"
        "assert f() == 1\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env["RIVERRUN_HOME"] = str(tmp_path)
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    loaded = json.loads(output.splitlines()[-1])
    server_side = ("fastapi", "uvicorn", "starlette", "httpx", "riverrun.server")
    offenders = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in server_side)]
    assert offenders == []


def test_public_names() -> None:
    assert set(riverrun.__all__) >= {"flow", "task", "get_run_logger", "tags", "State"}
    assert riverrun.__version__
