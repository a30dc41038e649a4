"""``riverrun server start`` as a user runs it: a real subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from riverrun import flow, get_run_logger, task
from riverrun.exceptions import StoreUnavailableError
from riverrun.settings import get_settings, temporary_settings
from riverrun.store.http import HttpStore
from riverrun.testing import riverrun_test_harness
from tests.serverprocess import running_server

SECRET = "s3cret-Pa55word"


@task
def double(x: int) -> int:
    get_run_logger().info("doubling %d", x)
    return x * 2


@flow
def doubles(n: int) -> int:
    return sum(double(i) for i in range(n))


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "riverrun", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def client_env(home: Path, api_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    env["RIVERRUN_HOME"] = str(home)
    if api_url:
        env["RIVERRUN_API_URL"] = api_url
    env.update(extra)
    return env


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_start_prints_the_url_binds_loopback_and_stops_cleanly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    with running_server(tmp_path / "server") as server:
        assert httpx.get(f"{server.api_url}/health").json()["status"] == "ok"
        assert server.stop(sig) == 0
        output = server.output.read_text()
    assert f"API at http://127.0.0.1:{server.port}/api" in output
    assert f"Uvicorn running on http://127.0.0.1:{server.port}" in output
    assert "riverrun server stopped" in output


def test_runs_recorded_embedded_before_the_server_are_visible_through_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with riverrun_test_harness(home):
        assert doubles(4) == 12
    database_url = f"sqlite:///{home / 'riverrun.db'}"
    with running_server(tmp_path / "server", database_url) as server:
        env = client_env(tmp_path / "client", server.api_url)
        listed = cli(env, "flow-run", "ls")
        assert listed.returncode == 0, listed.stderr
        assert "doubles" in listed.stdout and "Completed" in listed.stdout
        run_id = listed.stdout.splitlines()[1].split()[0]
        inspected = cli(env, "flow-run", "inspect", run_id)
        assert inspected.returncode == 0, inspected.stderr
        assert inspected.stdout.count("double-") == 4
        logs = cli(env, "flow-run", "logs", run_id)
        assert "doubling 3" in logs.stdout
        missing = cli(env, "flow-run", "inspect", "00000000-0000-0000-0000-000000000000")
        assert missing.returncode == 1 and "no flow run with id" in missing.stderr


def test_an_unreachable_server_is_a_one_line_error_for_a_command(tmp_path: Path) -> None:
    from tests.serverprocess import free_port

    env = client_env(tmp_path, f"http://127.0.0.1:{free_port()}/api")
    result = cli(env, "flow-run", "ls")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Could not open the run history at http://127.0.0.1")
    assert "Traceback" not in result.stderr


def test_the_auth_string_is_required_sent_and_never_shown(tmp_path: Path) -> None:
    extra = {"RIVERRUN_SERVER_API_AUTH_STRING": f"admin:{SECRET}"}
    with running_server(tmp_path / "server", extra_env=extra) as server:
        assert httpx.get(f"{server.api_url}/health").status_code == 200
        assert httpx.post(f"{server.api_url}/flow_runs/filter", json={}).status_code == 401

        # Without the auth string: reads fail with the reason; writes are spooled.
        anonymous = tmp_path / "anonymous"
        with (
            riverrun_test_harness(anonymous, api_url=server.api_url) as store,
            pytest.raises(StoreUnavailableError, match="HTTP 401"),
        ):
            store.read_flow_runs()

        # With it (from the profile, as `riverrun config set` keeps it): recorded.
        client_home = tmp_path / "client"
        env = client_env(client_home, None)
        set_ = cli(env, "config", "set", f"RIVERRUN_API_AUTH_STRING=admin:{SECRET}")
        assert set_.returncode == 0, set_.stderr
        with riverrun_test_harness(client_home, api_url=server.api_url) as store:
            assert get_settings().api_auth_string == f"admin:{SECRET}"
            assert SECRET not in repr(get_settings())
            assert doubles(3) == 6
            [run] = store.read_flow_runs()
            assert run.state is not None and run.state.is_completed()
            assert len(store.read_task_runs(run.id)) == 3

        view = cli(env, "config", "view")
        assert view.returncode == 0
        assert "RIVERRUN_API_AUTH_STRING='***' (profile)" in view.stdout
        listed = cli(env | {"RIVERRUN_API_URL": server.api_url}, "flow-run", "ls")
        assert listed.returncode == 0 and "doubles" in listed.stdout
        server.stop()
        output = server.output.read_text()
    assert SECRET not in output and SECRET not in set_.stdout + view.stdout + listed.stdout


def test_a_flow_runs_on_when_the_server_is_down_and_is_delivered_later(
    tmp_path: Path,
) -> None:
    from tests.serverprocess import free_port

    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    client_home = tmp_path / "client"
    with riverrun_test_harness(client_home, api_url=api_url):
        assert doubles(5) == 20  # nobody listens: recorded in the spool
    spool = list((client_home / "spool").glob("*.jsonl"))
    assert len(spool) == 1 and spool[0].stat().st_size > 0
    with running_server(tmp_path / "server", port=port) as server:
        # The next command delivers the spool, then reads.
        listed = cli(client_env(client_home, server.api_url), "flow-run", "ls")
        assert listed.returncode == 0, listed.stderr
        assert "doubles" in listed.stdout and "Completed" in listed.stdout
        assert spool[0].stat().st_size == 0
        with temporary_settings(home=str(tmp_path / "reader"), api_url=server.api_url):
            store = HttpStore(get_settings())
            try:
                [run] = store.read_flow_runs()
                task_runs = store.read_task_runs(run.id)
                assert len(task_runs) == 5
                assert [r.name for r in store.read_states(run.id)] == [
                    "Pending",
                    "Running",
                    "Completed",
                ]
                assert len([e for e in store.read_logs(run.id) if "doubling" in e.message]) == 5
            finally:
                store.close()


def test_a_database_it_cannot_open_is_a_one_line_error_without_the_password(
    tmp_path: Path,
) -> None:
    from tests.serverprocess import free_port

    env = client_env(
        tmp_path,
        None,
        RIVERRUN_DATABASE_URL=f"postgresql+psycopg://app:{SECRET}@127.0.0.1:{free_port()}/runs",
    )
    result = cli(env, "server", "start", "--port", str(free_port()))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: could not serve the database at postgresql")
    assert "***" in result.stderr and SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.postgres
def test_the_database_password_never_appears_in_the_server_output(tmp_path: Path) -> None:
    from sqlalchemy import make_url

    from tests.postgres import fresh_postgres_database

    with fresh_postgres_database() as url:
        # The test server trusts local connections, so any password is accepted.
        with_password = make_url(url).set(password=SECRET).render_as_string(hide_password=False)
        with running_server(tmp_path / "server", with_password) as server:
            health = httpx.get(f"{server.api_url}/health").json()
            assert health["database"].startswith("postgresql+psycopg://postgres:***@")
            with riverrun_test_harness(tmp_path / "client", api_url=server.api_url):
                assert doubles(2) == 2
            server.stop()
            output = server.output.read_text()
    assert "riverrun server over postgresql+psycopg://postgres:***@" in output
    assert SECRET not in output


def test_a_flow_killed_mid_run_is_shown_crashed_through_the_server(tmp_path: Path) -> None:
    import time

    script = tmp_path / "slow.py"
    script.write_text(
        "import time\n"
        "from riverrun import flow, task\n"
        "@task\n"
        "def nap(i: int) -> int:\n"
        "    time.sleep(0.05)\n"
        "    return i\n"
        "@flow\n"
        "def sleepy() -> None:\n"
        "    for i in range(10_000):\n"
        "        nap(i)\n"
        "sleepy()\n"
    )
    with running_server(tmp_path / "server") as server:
        env = client_env(tmp_path / "client", server.api_url)
        child = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while True:
                runs = httpx.post(f"{server.api_url}/flow_runs/filter", json={}).json()
                if runs and runs[0]["state"]["type"] == "RUNNING":
                    break
                assert time.monotonic() < deadline and child.poll() is None
                time.sleep(0.1)
        finally:
            child.kill()
            child.wait()
        listed = cli(env, "flow-run", "ls")
        assert listed.returncode == 0, listed.stderr
        assert "sleepy" in listed.stdout and "Crashed" in listed.stdout
        [run] = httpx.post(f"{server.api_url}/flow_runs/filter", json={}).json()
        assert run["state"]["type"] == "CRASHED"
        assert f"Process {child.pid}" in run["state"]["message"]


@pytest.mark.slow
def test_a_server_that_accepts_but_never_answers_holds_a_flow_one_timeout_at_most(
    tmp_path: Path,
) -> None:
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_stay_silent() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    api_url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    try:
        started = time.monotonic()
        with riverrun_test_harness(tmp_path / "client", api_url=api_url):
            assert doubles(20) == 380
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()
    # One 10 s read timeout, then everything goes to the spool (generous bound: a
    # loaded machine).
    assert elapsed < 30, elapsed
    [spool] = (tmp_path / "client" / "spool").glob("*.jsonl")
    kinds = [event["kind"] for line in spool.read_text().splitlines() for event in json.loads(line)]
    assert kinds.count("flow_run") == 1 and kinds.count("task_run") == 20
