"""``riverrun cache clear [--task NAME] [--key KEY]``: forget cached task results.

Removes the matching cache entries and their result files, so the next run of those
tasks computes afresh. A file another entry or a persisted task-run result still names
is removed too: a resumed run finds it gone and runs that task again (it never reuses
a wrong value).
"""

from __future__ import annotations

import argparse

from riverrun.cli.session import open_store

__all__ = ["clear_cache", "register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cache`` command to the ``riverrun`` parser."""
    parser = commands.add_parser(
        "cache", help="manage cached task results", description="Manage cached task results."
    )
    subcommands = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    clear = subcommands.add_parser(
        "clear",
        help="remove cache entries (all of them, or a task's, or one key)",
        description="Remove cache entries and their result files: all of them, those of "
        "a task (--task), or one key (--key); both filters together must both match.",
    )
    clear.add_argument("--task", metavar="NAME", help="only the entries of the task NAME")
    clear.add_argument("--key", metavar="KEY", help="only the entry with this cache key")
    clear.set_defaults(handler=clear_cache)


def clear_cache(args: argparse.Namespace) -> int:
    from riverrun.engine.caching import forget_entries
    from riverrun.engine.results import ResultRef, delete_result
    from riverrun.settings import get_settings

    home = get_settings().home
    with open_store() as store:
        removed = store.delete_cache_entries(task_name=args.task, key=args.key)
    forget_entries()
    files = 0
    for entry in removed:
        try:
            files += delete_result(ResultRef.decode(entry.location, home))
        except (ValueError, OSError):
            continue  # an entry naming no file of ours: the entry alone goes
    what = " of task " + repr(args.task) if args.task else ""
    what += " with key " + repr(args.key) if args.key else ""
    print(
        f"Removed {len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'}{what} "
        f"and {files} result file{'' if files == 1 else 's'}"
    )
    return 0
