"""A real ``riverrun server start`` subprocess on a free 127.0.0.1 port, for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["ServerProcess", "free_port", "running_server"]


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """One server subprocess; ``output`` is where its stdout and stderr go."""

    home: Path
    database_url: str
    port: int
    env: dict[str, str]
    output: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until ``/api/health`` answers."""
        with open(self.output, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "riverrun",
                    "server",
                    "start",
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output.read_text()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer in {timeout}s: {self.output.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the process; return its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@contextmanager
def running_server(
    home: Path,
    database_url: str | None = None,
    *,
    port: int | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """A started server over ``database_url`` (a SQLite file under ``home`` by default),
    stopped with SIGTERM on leaving."""
    home.mkdir(parents=True, exist_ok=True)
    database_url = database_url or f"sqlite:///{home / 'server.db'}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RIVERRUN_") or key == "RIVERRUN_TEST_POSTGRES_URL"
    }
    env.update(RIVERRUN_HOME=str(home), RIVERRUN_DATABASE_URL=database_url)
    env.update(extra_env or {})
    server = ServerProcess(home, database_url, port or free_port(), env, home / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
