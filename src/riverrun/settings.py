"""Settings: the only module that reads the environment.

Every setting is a ``RIVERRUN_*`` environment variable. ``get_settings()`` reads them at
call time, so a test or a user can change the environment (or use
``temporary_settings``) without restarting the interpreter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "get_settings", "temporary_settings"]

_LEVELS = {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings of this process.

    Attributes:
        home: ``RIVERRUN_HOME``, the folder holding the embedded database and results.
        database_url: ``RIVERRUN_DATABASE_URL``; defaults to ``sqlite:///{home}/riverrun.db``.
        api_url: ``RIVERRUN_API_URL``; when set, runs are recorded through a server.
        logging_level: ``RIVERRUN_LOGGING_LEVEL`` for run loggers (default ``INFO``).
        flush_interval: ``RIVERRUN_FLUSH_INTERVAL`` seconds between write-behind flushes.
        heartbeat_interval: ``RIVERRUN_HEARTBEAT_INTERVAL`` seconds between heartbeats of
            a running flow run (default 10); a run silent for three is taken for crashed.
        no_color: true when ``NO_COLOR`` is set (https://no-color.org).
    """

    home: Path
    database_url: str
    api_url: str | None
    logging_level: str
    flush_interval: float
    no_color: bool
    heartbeat_interval: float = 10.0


def get_settings() -> Settings:
    """Read the settings from the environment."""
    env = os.environ
    home = Path(env.get("RIVERRUN_HOME") or Path.home() / ".riverrun").expanduser()
    level = env.get("RIVERRUN_LOGGING_LEVEL", "INFO").strip().upper()
    if level not in _LEVELS:
        raise ValueError(
            f"RIVERRUN_LOGGING_LEVEL={level!r} is not a logging level; "
            f"use one of {', '.join(sorted(_LEVELS))}"
        )
    flush_interval = _seconds(env, "RIVERRUN_FLUSH_INTERVAL", "0.2")
    heartbeat_interval = _seconds(env, "RIVERRUN_HEARTBEAT_INTERVAL", "10", positive=True)
    return Settings(
        home=home,
        database_url=env.get("RIVERRUN_DATABASE_URL") or f"sqlite:///{home}/riverrun.db",
        api_url=env.get("RIVERRUN_API_URL") or None,
        logging_level=level,
        flush_interval=flush_interval,
        no_color="NO_COLOR" in env,
        heartbeat_interval=heartbeat_interval,
    )


def _seconds(env: Mapping[str, str], name: str, default: str, *, positive: bool = False) -> float:
    raw = env.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of seconds") from None
    if positive and not 0 < value < math.inf:
        raise ValueError(f"{name}={raw!r} must be a positive number of seconds")
    return value


@contextmanager
def temporary_settings(**values: str | None) -> Iterator[None]:
    """Set ``RIVERRUN_<NAME>`` variables for the duration of a ``with`` block.

    Example:
        >>> with temporary_settings(home="/tmp/rr", logging_level="DEBUG"):
        ...     ...
    """
    saved: dict[str, str | None] = {}
    for name, value in values.items():
        key = f"RIVERRUN_{name.upper()}"
        saved[key] = os.environ.get(key)
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
