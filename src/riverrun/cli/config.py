"""``riverrun config set / unset / view``: the settings profile under ``$RIVERRUN_HOME``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from riverrun.cli.session import CliError, hide_password
from riverrun.settings import (
    PROFILE_KEYS,
    check_setting,
    profile_path,
    read_profile,
    write_profile,
)

__all__ = ["register"]

_DEFAULTS = {
    "RIVERRUN_API_AUTH_STRING": "(none: the server requires no auth string)",
    "RIVERRUN_API_URL": "(none: runs are recorded in the embedded database)",
    "RIVERRUN_CONCURRENCY_LEASE_SECONDS": "30",
    "RIVERRUN_DATABASE_URL": "sqlite:///$RIVERRUN_HOME/riverrun.db",
    "RIVERRUN_FLUSH_INTERVAL": "0.2",
    "RIVERRUN_HEARTBEAT_INTERVAL": "10",
    "RIVERRUN_LOGGING_LEVEL": "INFO",
    "RIVERRUN_RESULTS_PERSIST_BY_DEFAULT": "false",
    "RIVERRUN_STORE_WRITER": "auto",
    "RIVERRUN_WRITER_GIVE_UP_AFTER": "60",
}


def register(commands: Any) -> None:
    parser = commands.add_parser("config", help="view and change the settings profile")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    set_ = verbs.add_parser("set", help="keep settings in the profile (KEY=VALUE ...)")
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    set_.set_defaults(handler=_set)
    unset = verbs.add_parser("unset", help="remove settings from the profile")
    unset.add_argument("keys", nargs="+", metavar="KEY")
    unset.set_defaults(handler=_unset)
    view = verbs.add_parser("view", help="show each setting, its value and where it comes from")
    view.set_defaults(handler=_view)


def _profile() -> dict[str, str]:
    try:
        return read_profile()
    except ValueError as error:
        raise CliError(f"{error}; fix or delete that file") from None


def _set(args: argparse.Namespace) -> int:
    changes: dict[str, str] = {}
    for assignment in args.assignments:
        key, equals, value = assignment.partition("=")
        key = key.strip()
        if not equals or not key:
            raise CliError(f"{assignment!r} is not KEY=VALUE")
        try:
            check_setting(key, value)
        except ValueError as error:
            raise CliError(str(error)) from None
        changes[key] = value
    values = {**_profile(), **changes}
    write_profile(values)
    for key, value in changes.items():
        note = " (the environment sets it too, and wins)" if key in os.environ else ""
        print(f"Set {key}={_shown(key, value)!r} in {profile_path()}{note}")
    return 0


def _unset(args: argparse.Namespace) -> int:
    values = _profile()
    for key in args.keys:
        if key not in PROFILE_KEYS:
            raise CliError(f"{key!r} is not a setting; use one of {', '.join(PROFILE_KEYS)}")
    removed = [key for key in args.keys if values.pop(key, None) is not None]
    write_profile(values)
    for key in args.keys:
        if key in removed:
            print(f"Unset {key} in {profile_path()}")
        else:
            print(f"{key} was not set in {profile_path()}")
    return 0


def _view(args: argparse.Namespace) -> int:
    values = _profile()
    print(f"PROFILE={str(profile_path())!r}")
    home = os.environ.get("RIVERRUN_HOME")
    print(f"RIVERRUN_HOME={home!r} (env)" if home else "RIVERRUN_HOME='~/.riverrun' (default)")
    for key in PROFILE_KEYS:
        if key in os.environ:
            value, source = os.environ[key], "env"
        elif key in values:
            value, source = values[key], "profile"
        else:
            value, source = _DEFAULTS[key], "default"
        print(f"{key}={_shown(key, value) if source != 'default' else value!r} ({source})")
    return 0


def _shown(key: str, value: str) -> str:
    """What may be printed of a setting: secrets never are."""
    if key == "RIVERRUN_API_AUTH_STRING":
        return "***"
    return hide_password(value)
