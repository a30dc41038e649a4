"""``riverrun server start [--host 127.0.0.1] [--port 4200]``: serve the API and the UI."""

from __future__ import annotations

import argparse
from typing import Any

from riverrun.cli.session import CliError, safe_url

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("server", help="run the API server")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    start = verbs.add_parser(
        "start",
        help="serve the API and UI over the configured database until Ctrl-C",
        description="Serve the REST API (under /api) and the UI (at /) over the database "
        "local runs use (RIVERRUN_DATABASE_URL), until Ctrl-C or SIGTERM.",
    )
    start.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for all)",
    )
    start.add_argument("--port", type=_port, default=4200, help="port to bind (default 4200)")
    start.set_defaults(handler=_start)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


def _start(args: argparse.Namespace) -> int:
    from riverrun.settings import get_settings

    try:
        settings = get_settings()
    except ValueError as error:
        raise CliError(str(error)) from None
    try:
        from riverrun.server.runner import serve
    except ImportError as error:
        raise CliError(
            f"the server needs its extra: pip install 'riverrun[server]' ({error})"
        ) from None
    from sqlalchemy.exc import SQLAlchemyError

    try:
        serve(settings, host=args.host, port=args.port)
    except (SQLAlchemyError, ValueError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise CliError(
            f"could not serve the database at {safe_url(settings.database_url)}: "
            f"{reason.replace(settings.database_url, safe_url(settings.database_url))}"
        ) from None
    return 0
