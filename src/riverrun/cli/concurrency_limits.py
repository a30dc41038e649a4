"""``riverrun concurrency-limit create | ls | inspect | update | reset | delete``.

Limits are read and changed through the store, like every command's data.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from riverrun.cli.output import format_time, table
from riverrun.cli.session import CliError, open_store

if TYPE_CHECKING:
    from riverrun.store.protocol import ConcurrencyLease, ConcurrencyLimit

__all__ = ["register", "render_limit", "render_limits"]


def register(commands: Any) -> None:
    """Add the ``concurrency-limit`` command and its verbs to the ``riverrun`` parser."""
    parser = commands.add_parser(
        "concurrency-limit",
        help="create, list and change concurrency limits",
        description="Named concurrency limits: `with concurrency(NAME)` blocks and task "
        "runs tagged NAME hold slots of them.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    create = verbs.add_parser("create", help="create a limit of LIMIT slots")
    create.add_argument("name", metavar="NAME")
    create.add_argument("limit", metavar="LIMIT", type=_slots)
    create.add_argument(
        "--slot-decay-per-second",
        type=_decay,
        default=0.0,
        metavar="X",
        help="slots taken by rate_limit() free themselves at X per second (default 0: "
        "no rate limiting)",
    )
    create.set_defaults(handler=_create)

    ls = verbs.add_parser("ls", help="list limits with their active slots and holders")
    ls.set_defaults(handler=_list)

    inspect = verbs.add_parser("inspect", help="show one limit and every lease holding it")
    inspect.add_argument("name", metavar="NAME")
    inspect.set_defaults(handler=_inspect)

    update = verbs.add_parser("update", help="change a limit's size or slot decay")
    update.add_argument("name", metavar="NAME")
    update.add_argument("--limit", type=_slots, metavar="N", help="the new number of slots")
    update.add_argument("--slot-decay-per-second", type=_decay, metavar="X")
    update.set_defaults(handler=_update)

    reset = verbs.add_parser("reset", help="free every slot (drop all leases and waiters)")
    reset.add_argument("name", metavar="NAME")
    reset.set_defaults(handler=_reset)

    delete = verbs.add_parser("delete", help="delete a limit (its holders run on unlimited)")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(handler=_delete)


def _slots(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of slots, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _decay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected slots per second, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _checked(action: Any) -> Any:
    # A bad name (blank, too long) is a ValueError from the rules: report it as one line.
    try:
        return action()
    except ValueError as error:
        raise CliError(str(error)) from None


def _create(args: argparse.Namespace) -> int:
    with open_store() as store:
        limit = _checked(
            lambda: store.create_concurrency_limit(
                args.name, args.limit, slot_decay_per_second=args.slot_decay_per_second
            )
        )
    decay = limit.slot_decay_per_second
    extra = f", decaying {decay:g} slot(s) per second" if decay else ""
    print(f"Created concurrency limit {limit.name!r} with {limit.limit} slot(s){extra}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with open_store() as store:
        limits = store.read_concurrency_limits()
    print(render_limits(limits) if limits else "No concurrency limits.")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    with open_store() as store:
        limit = store.read_concurrency_limit(args.name)
    print(render_limit(limit))
    return 0


def _update(args: argparse.Namespace) -> int:
    if args.limit is None and args.slot_decay_per_second is None:
        raise CliError("nothing to update: give --limit N and/or --slot-decay-per-second X")
    with open_store() as store:
        limit = _checked(
            lambda: store.update_concurrency_limit(
                args.name, limit=args.limit, slot_decay_per_second=args.slot_decay_per_second
            )
        )
    print(
        f"Updated concurrency limit {limit.name!r}: {limit.limit} slot(s), "
        f"slot decay {limit.slot_decay_per_second:g} per second"
    )
    return 0


def _reset(args: argparse.Namespace) -> int:
    with open_store() as store:
        limit = store.reset_concurrency_limit(args.name)
    print(f"Reset concurrency limit {limit.name!r}: every slot is free")
    return 0


def _delete(args: argparse.Namespace) -> int:
    with open_store() as store:
        store.delete_concurrency_limit(args.name)
    print(f"Deleted concurrency limit {args.name!r}")
    return 0


def _active(limit: ConcurrencyLimit) -> str:
    value = limit.active_slots
    return str(int(value)) if value == int(value) else f"{value:.2f}"


def _holder(lease: ConcurrencyLease) -> str:
    holder = lease.holder
    run = holder.task_run_id or holder.flow_run_id
    where = f"{holder.hostname or '?'}:{holder.pid if holder.pid is not None else '?'}"
    return f"{where} ({'run ' + run if run else 'no run'})"


def render_limits(limits: list[ConcurrencyLimit]) -> str:
    """The ``ls`` table: name, limit, active slots, decay, waiting, holders."""
    rows = [
        [
            limit.name,
            str(limit.limit),
            _active(limit),
            f"{limit.slot_decay_per_second:g}",
            str(limit.waiting),
            ", ".join(_holder(lease) for lease in limit.leases) or "-",
        ]
        for limit in limits
    ]
    return table(["NAME", "LIMIT", "ACTIVE", "DECAY/S", "WAITING", "HOLDERS"], rows)


def render_limit(limit: ConcurrencyLimit) -> str:
    """The ``inspect`` view: the limit's fields, then one line per lease."""
    lines = [
        f"Concurrency limit {limit.name!r}",
        f"  limit:          {limit.limit} slot(s)",
        f"  active slots:   {_active(limit)}",
        f"  slot decay:     {limit.slot_decay_per_second:g} per second",
        f"  waiting:        {limit.waiting}",
        f"  created:        {format_time(limit.created)}",
        f"  updated:        {format_time(limit.updated)}",
        "",
    ]
    if not limit.leases:
        lines.append("No leases.")
        return "\n".join(lines)
    rows = [
        [
            lease.id,
            str(lease.slots),
            lease.holder.flow_run_id or "-",
            lease.holder.task_run_id or "-",
            lease.holder.hostname or "-",
            str(lease.holder.pid) if lease.holder.pid is not None else "-",
            format_time(lease.expiration),
        ]
        for lease in limit.leases
    ]
    headers = ["LEASE", "SLOTS", "FLOW RUN", "TASK RUN", "HOST", "PID", "EXPIRES"]
    lines.append(table(headers, rows))
    return "\n".join(lines)
