"""``riverrun database upgrade / reset``: the schema of the database the settings name."""

from __future__ import annotations

import argparse
from typing import Any

from riverrun.cli.session import CliError, safe_url

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("database", help="upgrade or reset the run history's database")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    upgrade = verbs.add_parser("upgrade", help="migrate the schema to this version's")
    upgrade.set_defaults(handler=_upgrade)
    reset = verbs.add_parser("reset", help="delete every run and cache entry, then recreate")
    reset.add_argument("--yes", action="store_true", help="confirm: this deletes the history")
    reset.set_defaults(handler=_reset)


def _engine() -> Any:
    from sqlalchemy.exc import SQLAlchemyError

    from riverrun.db.engine import create_db_engine
    from riverrun.settings import get_settings

    try:
        url = get_settings().database_url
        return create_db_engine(url), url
    except (ValueError, ImportError, SQLAlchemyError) as error:
        raise CliError(str(error)) from None


def _migrate(engine: Any, url: str) -> str:
    from sqlalchemy.exc import SQLAlchemyError

    from riverrun.db.engine import current_revision, migrate

    try:
        migrate(engine)
        return str(current_revision(engine))
    except SQLAlchemyError as error:
        first = str(error).splitlines()[0]
        raise CliError(f"could not migrate the database at {safe_url(url)}: {first}") from None


def _upgrade(args: argparse.Namespace) -> int:
    engine, url = _engine()
    try:
        revision = _migrate(engine, url)
    finally:
        engine.dispose()
    print(f"The database at {safe_url(url)} is at revision {revision}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CliError("reset deletes every flow run, task run, log and cache entry; add --yes")
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from riverrun.db.tables import metadata

    engine, url = _engine()
    try:
        try:
            with engine.begin() as connection:
                metadata.drop_all(connection)
                connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        except SQLAlchemyError as error:
            first = str(error).splitlines()[0]
            raise CliError(f"could not reset the database at {safe_url(url)}: {first}") from None
        revision = _migrate(engine, url)
    finally:
        engine.dispose()
    print(f"Reset the database at {safe_url(url)}; it is empty, at revision {revision}")
    return 0
