"""The seeds' two-task pipeline, run against a local fake data source.

``fetch_data`` has ``retries=2``: the fake source answers the first request with
HTTP 503, so the first attempt fails, the task retries after a second and succeeds;
``process_data`` then keeps the records whose ``value`` is at least 20.

Run it with ``make demo`` (or ``python examples/pipeline.py``), then look at the
history with ``riverrun flow-run ls``.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from riverrun import flow, task

RECORDS = [{"id": n, "value": value} for n, value in enumerate([5, 20, 35, 12, 48, 19, 27])]


class FlakySource(BaseHTTPRequestHandler):
    """Serves RECORDS as JSON, failing the first request with 503."""

    requests_seen = 0

    def do_GET(self) -> None:
        type(self).requests_seen += 1
        if type(self).requests_seen == 1:
            self.send_error(503, "warming up")
            return
        body = json.dumps(RECORDS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the terminal for the run logs


@task(retries=2, retry_delay_seconds=1, log_prints=True)
def fetch_data(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url, timeout=30) as response:
        records: list[dict[str, Any]] = json.load(response)
    print(f"Fetched {len(records)} records")
    return records


@task(log_prints=True)
def process_data(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    filtered = [r for r in records if r["value"] >= 20]
    print(f"Filtered to {len(filtered)} records")
    return filtered


@flow(name="example-pipeline", log_prints=True)
def pipeline(url: str = "http://127.0.0.1:8765/data") -> list[dict[str, Any]]:
    raw = fetch_data(url)
    return process_data(raw)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakySource)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = pipeline(url=f"http://127.0.0.1:{server.server_port}/data")
        print(result)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
