"""Serve the API with uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from riverrun.db.engine import redacted
from riverrun.settings import Settings

__all__ = ["serve"]


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 4200) -> None:
    """Run the server in this process; return once it has stopped (Ctrl-C, SIGTERM).

    On either signal the server stops accepting, lets requests in flight finish (each
    commits before it answers), and returns: a requested stop is a success (exit 0).
    """
    import uvicorn

    class _Server(uvicorn.Server):
        # uvicorn re-raises the signal once shut down, turning a clean stop into exit
        # code 130/143; a stop the user asked for is not a failure.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            previous: dict[int, Any] = {
                sig: signal.signal(sig, self.handle_exit) for sig in handled
            }
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    from riverrun.server.app import create_app

    app = create_app(settings)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}"
    print(f"riverrun server over {redacted(settings.database_url)}", flush=True)
    print(f"API at {url}/api (docs {url}/api/docs); UI at {url}/", flush=True)
    print(f"Point flows at it: riverrun config set RIVERRUN_API_URL={url}/api", flush=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        # Headers never carry the auth string into a log line: uvicorn's access log
        # shows the request line and status only.
        access_log=False,
        server_header=False,
    )
    server = _Server(config)
    # The app, its routes and models live as long as the process: keep them out of
    # the collector's full passes, which a large event batch otherwise triggers often.
    gc.collect()
    gc.freeze()
    server.run()
    print("riverrun server stopped", file=sys.stderr, flush=True)
