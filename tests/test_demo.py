"""``make demo``'s pipeline: fails once against the fake source, retries, filters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_pipeline_retries_and_is_recorded(tmp_path: Path) -> None:
    env = {**os.environ, "RIVERRUN_HOME": str(tmp_path / "home")}
    env.pop("NO_COLOR", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pipeline.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    err = result.stderr
    assert re.search(r"Created flow run '[a-z]+-[a-z]+' for flow 'example-pipeline'", err)
    assert "Task run 'fetch_data' - Attempt 1 of 3 failed with HTTPError" in err
    assert re.search(r"\| INFO    \| Task run 'fetch_data' - Retrying in 1\.0 seconds\.\.\.", err)
    assert "Task run 'fetch_data' - Fetched 7 records" in err
    assert "Task run 'process_data' - Filtered to 4 records" in err
    assert re.search(r"Flow run '[a-z]+-[a-z]+' - Finished in state Completed\(\)", err)
    assert all(int(v) >= 20 for v in re.findall(r"'value': (\d+)", result.stdout))

    table = subprocess.run(
        [sys.executable, "-m", "riverrun", "flow-run", "ls"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "example-pipeline" in table and "Completed" in table
