"""Settings: the only module that reads the environment and the settings profile.

Every setting is a ``RIVERRUN_*`` environment variable. A setting may also be kept in
the profile, ``$RIVERRUN_HOME/profile.toml`` (written by ``riverrun config set``); the
environment wins over the profile. ``get_settings()`` reads both at call time, so a
test or a user can change them (or use ``temporary_settings``) without restarting the
interpreter. ``RIVERRUN_HOME`` itself comes only from the environment: it says where
the profile is.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PROFILE_KEYS",
    "Settings",
    "check_setting",
    "get_settings",
    "profile_path",
    "read_profile",
    "temporary_settings",
    "write_profile",
]

_LEVELS = {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

#: The settings a profile may hold (``RIVERRUN_HOME`` locates the profile itself).
PROFILE_KEYS = (
    "RIVERRUN_API_AUTH_STRING",
    "RIVERRUN_API_URL",
    "RIVERRUN_CONCURRENCY_LEASE_SECONDS",
    "RIVERRUN_DATABASE_URL",
    "RIVERRUN_FLUSH_INTERVAL",
    "RIVERRUN_HEARTBEAT_INTERVAL",
    "RIVERRUN_LOGGING_LEVEL",
    "RIVERRUN_RESULTS_PERSIST_BY_DEFAULT",
    "RIVERRUN_STORE_WRITER",
    "RIVERRUN_WRITER_GIVE_UP_AFTER",
)

#: Who commits the embedded store's write-behind events (see ``store/writer.py``).
STORE_WRITERS = ("auto", "process", "thread")


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
        results_persist_by_default: ``RIVERRUN_RESULTS_PERSIST_BY_DEFAULT``; when true,
            every task result is kept on disk (so a failed flow run can resume from
            where it failed) unless a task or flow says ``persist_result=False``.
        concurrency_lease_seconds: ``RIVERRUN_CONCURRENCY_LEASE_SECONDS`` (default 30):
            how long concurrency slots outlive a holder that stopped renewing them
            (one killed with ``kill -9``); renewed three times per period while held.
        api_auth_string: ``RIVERRUN_API_AUTH_STRING`` (``user:password``), sent by the
            HTTP store to a server that requires one. Never shown or logged.
        server_api_auth_string: ``RIVERRUN_SERVER_API_AUTH_STRING``: when set, the
            server requires this ``user:password`` (HTTP Basic) on every route but
            ``/api/health``. Read from the environment only.
        store_writer: ``RIVERRUN_STORE_WRITER``: who commits the embedded store's
            write-behind events. ``thread``: a thread of this process; ``process``: a
            writer process of its own, so that the database work does not share this
            process's interpreter lock with the runs; ``auto`` (default): a thread
            until the process has recorded a few hundred events, then a process.
        writer_give_up_after: ``RIVERRUN_WRITER_GIVE_UP_AFTER`` (default 60): how many
            seconds a writer process whose parent is gone keeps trying a database that
            is unavailable before it reports the events it could not commit and exits.
    """

    home: Path
    database_url: str
    api_url: str | None
    logging_level: str
    flush_interval: float
    no_color: bool
    heartbeat_interval: float = 10.0
    results_persist_by_default: bool = False
    concurrency_lease_seconds: float = 30.0
    api_auth_string: str | None = None
    server_api_auth_string: str | None = None
    store_writer: str = "auto"
    writer_give_up_after: float = 60.0

    def __repr__(self) -> str:
        # The auth strings are secrets: never in a repr, a log or a traceback.
        hidden = {"api_auth_string", "server_api_auth_string"}
        fields = ", ".join(
            f"{name}={'***' if name in hidden and getattr(self, name) else getattr(self, name)!r}"
            for name in self.__slots__
        )
        return f"Settings({fields})"


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("RIVERRUN_HOME") or Path.home() / ".riverrun").expanduser()


def profile_path() -> Path:
    """Where the settings profile of this ``RIVERRUN_HOME`` lives."""
    return _home(os.environ) / "profile.toml"


# path -> (modification time and size, its settings): read again only when it changes.
_profiles: dict[Path, tuple[tuple[int, int], dict[str, str]]] = {}


def read_profile(path: Path | None = None) -> dict[str, str]:
    """The settings in the profile (``{}`` when there is none).

    Raises:
        ValueError: the file is not valid TOML, or holds a key that is not a setting.
    """
    path = path or profile_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _profiles.get(path)
    if cached is not None and cached[0] == stamp:
        return dict(cached[1])
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"The settings profile {path} is not valid TOML: {error}") from None
    values: dict[str, str] = {}
    for key, value in data.items():
        if key not in PROFILE_KEYS:
            raise ValueError(
                f"The settings profile {path} holds {key!r}, which is not a setting it can "
                f"hold (one of {', '.join(PROFILE_KEYS)})"
            )
        values[key] = str(value)
    _profiles[path] = (stamp, values)
    return dict(values)


def write_profile(values: Mapping[str, str], path: Path | None = None) -> None:
    """Replace the profile with ``values`` (written whole, then renamed into place)."""
    import json
    import tempfile

    path = path or profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# riverrun settings (riverrun config set / unset); environment variables win."]
    # A JSON string is a valid TOML basic string for these values.
    lines += [f"{key} = {json.dumps(values[key])}" for key in sorted(values)]
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".profile.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_setting(key: str, value: str) -> None:
    """Raise ``ValueError`` naming the problem if ``key=value`` is not a valid setting."""
    if key not in PROFILE_KEYS:
        raise ValueError(f"{key!r} is not a setting; use one of {', '.join(PROFILE_KEYS)}")
    if key == "RIVERRUN_API_URL" and not value.startswith(("http://", "https://")):
        raise ValueError(f"RIVERRUN_API_URL={value!r} must be an http:// or https:// URL")
    if key == "RIVERRUN_API_AUTH_STRING" and ":" not in value:
        raise ValueError("RIVERRUN_API_AUTH_STRING must be user:password")
    if key == "RIVERRUN_DATABASE_URL" and "://" not in value:
        raise ValueError(
            f"RIVERRUN_DATABASE_URL={value!r} is not a database URL "
            "(sqlite:///path or postgresql+psycopg://user@host/db)"
        )
    _settings_from({key: value}, Path("/"))


def get_settings() -> Settings:
    """Read the settings from the environment, over those in the profile."""
    env = os.environ
    home = _home(env)
    return _settings_from({**read_profile(home / "profile.toml"), **env}, home)


def _settings_from(env: Mapping[str, str], home: Path) -> Settings:
    level = env.get("RIVERRUN_LOGGING_LEVEL", "INFO").strip().upper()
    if level not in _LEVELS:
        raise ValueError(
            f"RIVERRUN_LOGGING_LEVEL={level!r} is not a logging level; "
            f"use one of {', '.join(sorted(_LEVELS))}"
        )
    flush_interval = _seconds(env, "RIVERRUN_FLUSH_INTERVAL", "0.2")
    heartbeat_interval = _seconds(env, "RIVERRUN_HEARTBEAT_INTERVAL", "10", positive=True)
    persist = env.get("RIVERRUN_RESULTS_PERSIST_BY_DEFAULT", "false").strip().lower()
    if persist not in _BOOLEANS:
        raise ValueError(
            f"RIVERRUN_RESULTS_PERSIST_BY_DEFAULT={persist!r} is not a boolean; use true or false"
        )
    lease_seconds = _seconds(env, "RIVERRUN_CONCURRENCY_LEASE_SECONDS", "30", positive=True)
    writer = env.get("RIVERRUN_STORE_WRITER", "auto").strip().lower()
    if writer not in STORE_WRITERS:
        raise ValueError(
            f"RIVERRUN_STORE_WRITER={writer!r} is not a store writer; "
            f"use one of {', '.join(STORE_WRITERS)}"
        )
    give_up_after = _seconds(env, "RIVERRUN_WRITER_GIVE_UP_AFTER", "60", positive=True)
    return Settings(
        home=home,
        database_url=env.get("RIVERRUN_DATABASE_URL") or f"sqlite:///{home}/riverrun.db",
        api_url=env.get("RIVERRUN_API_URL") or None,
        logging_level=level,
        flush_interval=flush_interval,
        no_color="NO_COLOR" in env,
        heartbeat_interval=heartbeat_interval,
        results_persist_by_default=_BOOLEANS[persist],
        concurrency_lease_seconds=lease_seconds,
        api_auth_string=env.get("RIVERRUN_API_AUTH_STRING") or None,
        server_api_auth_string=env.get("RIVERRUN_SERVER_API_AUTH_STRING") or None,
        store_writer=writer,
        writer_give_up_after=give_up_after,
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
