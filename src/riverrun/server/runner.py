"""Serve the API with uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import sys

from riverrun.db.engine import redacted
from riverrun.settings import Settings

__all__ = ["serve"]


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 4200) -> None:
    """Run the server in this process; return once it has stopped (Ctrl-C, SIGTERM).

    uvicorn handles both signals: it stops accepting, lets requests in flight finish
    (each commits before it answers), and returns.
    """
    import uvicorn

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
    server = uvicorn.Server(config)
    server.run()
    print("riverrun server stopped", file=sys.stderr, flush=True)
