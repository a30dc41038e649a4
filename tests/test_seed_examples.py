"""Every seed example that needs no server, with ``prefect`` replaced by ``riverrun``.

Each snippet is the seed's code as printed, run as a script in its own process; only
network calls are swapped for local stand-ins (and long sleeps shortened), as the
issue allows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TIME = r"\d\d:\d\d:\d\d\.\d{3}"


def run_seed(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "seed.py"
    script.write_text(textwrap.dedent(code).replace("prefect", "riverrun"))
    env = {**os.environ, "RIVERRUN_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


def test_quick_example(tmp_path: Path) -> None:
    result = run_seed(
        tmp_path,
        """
        from prefect import flow, task

        @task
        def fetch_data(url: str) -> list[dict]:
            return [{"active": True, "id": 1}, {"active": False, "id": 2}]  # httpx.get(url)

        @task
        def process(records: list[dict]) -> list[dict]:
            return [r for r in records if r.get("active")]

        @flow(name="My Pipeline")
        def pipeline(url: str) -> list[dict]:
            raw = fetch_data(url)
            return process(raw)

        if __name__ == "__main__":
            result = pipeline("https://httpbin.org/json")
            print(result)
        """,
    )
    assert result.stdout == "[{'active': True, 'id': 1}]\n"
    expected = [
        rf"{TIME} \| INFO    \| riverrun\.engine - Created flow run '[a-z]+-[a-z]+' for flow "
        r"'My Pipeline'",
        rf"{TIME} \| INFO    \| Task run 'fetch_data' - Finished in state Completed\(\)",
        rf"{TIME} \| INFO    \| Task run 'process' - Finished in state Completed\(\)",
        rf"{TIME} \| INFO    \| Flow run '[a-z]+-[a-z]+' - Finished in state Completed\(\)",
    ]
    lines = result.stderr.splitlines()
    assert len(lines) == 4, result.stderr
    for pattern, line in zip(expected, lines, strict=True):
        assert re.fullmatch(pattern, line), line


def test_retries_and_timeouts(tmp_path: Path) -> None:
    result = run_seed(
        tmp_path,
        """
        from prefect import flow, task
        from datetime import timedelta

        attempts = []

        @task(
            retries=3,
            retry_delay_seconds=0.1,  # 10 in the seed
            timeout_seconds=30,
            log_prints=True,
        )
        def unreliable_api_call(endpoint: str) -> dict:
            import random
            attempts.append(1)
            if len(attempts) == 1:  # random.random() < 0.5 in the seed
                raise ConnectionError("Simulated network failure")
            print(f"Called {endpoint} successfully")
            return {"status": "ok"}

        @flow(
            retries=1,
            timeout_seconds=120,
            log_prints=True,
        )
        def robust_pipeline():
            result = unreliable_api_call("https://api.example.com/data")
            print(f"Result: {result}")

        robust_pipeline()
        """,
    )
    err = result.stderr
    assert re.search(
        r"INFO    \| Task run 'unreliable_api_call' - Retrying in 0\.1 seconds\.\.\.", err
    )
    assert re.search(
        r"INFO    \| Task run 'unreliable_api_call' - Called https://api\.example\.com/data "
        r"successfully",
        err,
    )
    assert "Task run 'unreliable_api_call' - Finished in state Completed()" in err
    assert re.search(r"INFO    \| Flow run '[a-z]+-[a-z]+' - Result: \{'status': 'ok'\}", err)


def test_caching(tmp_path: Path) -> None:
    result = run_seed(
        tmp_path,
        """
        from prefect import flow, task
        from prefect.tasks import task_input_hash
        from datetime import timedelta
        import time

        @task(
            cache_key_fn=task_input_hash,
            cache_expiration=timedelta(hours=1),
            log_prints=True,
        )
        def expensive_query(sql: str) -> list[dict]:
            print(f"Running query: {sql}")
            time.sleep(0.2)  # simulate slow DB call (2 s in the seed)
            return [{"result": 42}]

        @flow(log_prints=True)
        def pipeline():
            # First call — runs the query
            r1 = expensive_query("SELECT * FROM big_table")
            # Second call with same input — returns cached result instantly
            r2 = expensive_query("SELECT * FROM big_table")
            print(r1, r2)

        pipeline()
        """,
    )
    assert result.stderr.count("Running query: SELECT * FROM big_table") == 1
    assert "- [{'result': 42}] [{'result': 42}]" in result.stderr


def test_parallel_submission(tmp_path: Path) -> None:
    result = run_seed(
        tmp_path,
        """
        from prefect import flow, task
        from prefect.futures import wait
        import time

        @task(log_prints=True)
        def process_item(item: int) -> int:
            time.sleep(0.5)
            return item ** 2

        @flow
        def parallel_pipeline(items: list[int]) -> list[int]:
            futures = [process_item.submit(item) for item in items]
            wait(futures)
            return [f.result() for f in futures]

        started = time.monotonic()
        result = parallel_pipeline(list(range(10)))
        print(result)
        print(time.monotonic() - started < 1.5)
        """,
    )
    assert result.stdout == "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\nTrue\n"


def test_subflows(tmp_path: Path) -> None:
    result = run_seed(
        tmp_path,
        """
        from prefect import flow, task

        @task
        def validate(data: list) -> bool:
            return len(data) > 0

        @flow(name="transform")
        def transform_flow(data: list) -> list:
            if validate(data):
                return [x * 2 for x in data]
            return []

        @flow(name="main")
        def main_flow():
            raw = [1, 2, 3, 4, 5]
            result = transform_flow(raw)   # sub-flow call
            print(f"Transformed: {result}")

        main_flow()
        """,
    )
    assert re.search(
        r"INFO    \| riverrun\.engine - Created flow run '[a-z-]+' for flow 'main'", result.stderr
    )
    assert re.search(
        r"INFO    \| riverrun\.engine - Created subflow run '[a-z-]+' for flow 'transform'",
        result.stderr,
    )
    assert result.stdout == "Transformed: [2, 4, 6, 8, 10]\n"


@pytest.mark.parametrize("fail", [False, True])
def test_logging_and_state_hooks(tmp_path: Path, fail: bool) -> None:
    result = run_seed(
        tmp_path,
        f"""
        from prefect import flow, task
        from prefect.states import State

        @task(log_prints=True)
        def my_task():
            print("task running")
            if {fail}:
                raise RuntimeError("task broke")
            return 42

        def on_failure(flow, flow_run, state):
            print(f"Flow {{flow.name}} failed: {{state.message}}")

        def on_completion(flow, flow_run, state):
            print(f"Flow {{flow.name}} completed successfully")

        @flow(
            on_failure=[on_failure],
            on_completion=[on_completion],
            log_prints=True,
        )
        def instrumented_flow():
            result = my_task()
            print(f"Result: {{result}}")

        try:
            instrumented_flow()
        except RuntimeError:
            pass
        """,
    )
    err = result.stderr
    assert "Task run 'my_task' - task running" in err
    if fail:
        assert (
            "Flow instrumented-flow failed: Flow run encountered an exception: "
            "RuntimeError: task broke"
        ) in err
    else:
        assert "- Result: 42" in err
        assert "Flow instrumented-flow completed successfully" in err


def test_concepts_pipeline_with_parameters(tmp_path: Path) -> None:
    result = run_seed(
        tmp_path,
        """
        from prefect import flow, task

        calls = []

        @task(retries=3, retry_delay_seconds=0.1)
        def fetch_data(url: str) -> list:
            calls.append(url)
            if len(calls) == 1:
                raise ConnectionError("503")  # response.raise_for_status()
            return [{"active": True}, {"active": False}]

        @task
        def transform(records: list) -> list:
            return [r for r in records if r["active"]]

        @flow(name="daily-report")
        def pipeline(url: str = "https://api.example.com/data"):
            raw = fetch_data(url)
            cleaned = transform(raw)
            return cleaned

        print(pipeline())
        print(pipeline(url="https://staging.api.example.com/data"))
        """,
    )
    assert result.stdout == "[{'active': True}]\n[{'active': True}]\n"
    history = subprocess.run(
        [
            sys.executable,
            "-c",
            "from riverrun.store import get_store\n"
            "runs = get_store().read_flow_runs()\n"
            "print(sorted(r.parameters['url'] for r in runs))",
        ],
        env={**os.environ, "RIVERRUN_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert history.stdout.strip() == (
        "['https://api.example.com/data', 'https://staging.api.example.com/data']"
    )


def test_concurrency_limit(tmp_path: Path) -> None:
    env = {**os.environ, "RIVERRUN_HOME": str(tmp_path / "home")}
    created = subprocess.run(
        [sys.executable, "-m", "riverrun", "concurrency-limit", "create", "external-api", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    result = run_seed(
        tmp_path,
        """
        import threading, time
        active, highest, lock = 0, 0, threading.Lock()

        def get(endpoint):  # httpx.get(endpoint).json(), counting callers at once
            global active, highest
            with lock:
                active += 1
                highest = max(highest, active)
            time.sleep(0.05)
            with lock:
                active -= 1
            return {"endpoint": endpoint}

        from prefect import flow, task
        from prefect.concurrency.sync import concurrency

        @task
        def api_call(endpoint: str) -> dict:
            with concurrency("external-api", occupy=1):
                return get(endpoint)

        @flow
        def batch_requests(endpoints: list[str]) -> list[dict]:
            futures = [api_call.submit(ep) for ep in endpoints]
            return [f.result() for f in futures]

        results = batch_requests([f"https://api.example.com/{i}" for i in range(20)])
        print(len(results), highest)
        """,
    )
    assert result.stdout == "20 5\n"
