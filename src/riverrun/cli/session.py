"""How a command reaches the store, and the one error type a command reports."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from riverrun.store import RunStore

__all__ = ["CliError", "hide_password", "open_store", "safe_url"]

# "scheme://user:password@host": everything between the user's colon and the "@".
_CREDENTIALS = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


class CliError(Exception):
    """An expected failure, shown as ``Error: <message>`` on one line with exit code 1."""


@contextmanager
def open_store() -> Iterator[RunStore]:
    """The store the settings point at, for the length of one command.

    Raises:
        CliError: the settings are invalid, or the database cannot be opened or read
            (the message names the URL with its password hidden).
    """
    # Imported here so that building the parser (and --help, --version) stays cheap.
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    from riverrun.settings import get_settings
    from riverrun.store import get_store

    try:
        settings = get_settings()
    except ValueError as error:
        raise CliError(str(error)) from None
    url = settings.database_url
    from riverrun.exceptions import StoreUnavailableError

    try:
        store = get_store(settings)
    except StoreUnavailableError as error:
        error_url = error.url
        raise CliError(
            f"could not open the database at {error_url}: {_reason(error.__cause__ or error, url)}"
        ) from None
    except (SQLAlchemyError, sqlite3.Error, OSError, ImportError, ValueError) as error:
        raise CliError(
            f"could not open the database at {safe_url(url)}: {_reason(error, url)}"
        ) from None
    try:
        yield store
    except StoreUnavailableError as error:
        raise CliError(str(error)) from None
    except (SQLAlchemyError, sqlite3.Error) as error:  # sqlite3: the embedded store's run path
        raise CliError(
            f"could not read the database at {safe_url(url)}: {_reason(error, url)}"
        ) from None


def hide_password(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` in it hidden
    (without loading SQLAlchemy to parse it)."""
    return _CREDENTIALS.sub(r"\1***@", text)


def safe_url(url: str) -> str:
    """``url`` with any password hidden, even when it does not parse as a URL."""
    from riverrun.db.engine import redacted

    try:
        return redacted(url)
    except Exception:
        return hide_password(url)


def _reason(error: BaseException, url: str) -> str:
    # A DBAPI error's own message is the useful part; SQLAlchemy's wrapper adds the SQL
    # and a documentation link over several lines.
    text = str(getattr(error, "orig", None) or error) or type(error).__name__
    line = next((part.strip() for part in text.splitlines() if part.strip()), text)
    # Drivers sometimes echo the connection string back; never show its password.
    password = _password(url)
    if password:
        line = line.replace(password, "***")
    return _CREDENTIALS.sub(r"\1***@", line)


def _password(url: str) -> str | None:
    from sqlalchemy import make_url

    try:
        password = make_url(url).password
    except Exception:
        return None
    return None if password is None else str(password)
