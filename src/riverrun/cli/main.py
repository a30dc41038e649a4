"""The ``riverrun`` entry point: parse the arguments, run a command, return its exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from riverrun import __version__
from riverrun.cli import cache, concurrency_limits, config, database, flow_runs, server
from riverrun.cli.session import CliError
from riverrun.exceptions import ObjectNotFoundError, RiverrunError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The ``riverrun`` argument parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="riverrun",
        description="riverrun: run history and control for your flows.",
    )
    parser.add_argument("--version", action="version", version=f"riverrun {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    flow_runs.register(commands)
    config.register(commands)
    database.register(commands)
    cache.register(commands)
    concurrency_limits.register(commands)
    server.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``riverrun`` command line and return its exit code.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        ``0`` on success, ``1`` on an expected failure (reported as one line on
        stderr), ``2`` on a usage error, ``130`` when interrupted.

    Example:
        >>> main(["flow-run", "ls", "--limit", "5"])
        0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits for --help, --version and usage errors; hand back its code.
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ObjectNotFoundError as error:
        return _fail(f"no {error.kind} with id {error.object_id!r}")
    except (CliError, RiverrunError) as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``riverrun flow-run ls | head``): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not complain.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1


def _fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1
