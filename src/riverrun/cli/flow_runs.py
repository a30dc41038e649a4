"""``riverrun flow-run ls | inspect | logs``: the run history, read from the store.

``ls`` and ``inspect`` first mark Crashed the runs whose process is gone, so that a run
killed mid-flight is shown as what it is rather than Running forever.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from riverrun.cli.output import format_clock, format_duration, format_time, one_line, table
from riverrun.cli.session import open_store

if TYPE_CHECKING:
    from riverrun.states import State
    from riverrun.store import RunStore
    from riverrun.store.protocol import FlowRun, LogEntry, StateRecord, TaskRun

__all__ = [
    "format_log_line",
    "inspect_flow_run",
    "list_flow_runs",
    "register",
    "render_flow_run",
    "render_flow_runs",
    "retry_flow_run",
    "show_flow_run_logs",
]

DEFAULT_LIMIT = 20

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``flow-run`` command and its subcommands to the ``riverrun`` parser."""
    parser = commands.add_parser(
        "flow-run", help="list and inspect flow runs", description="List and inspect flow runs."
    )
    subcommands = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

    ls = subcommands.add_parser(
        "ls", help="list flow runs, newest first", description="List flow runs, newest first."
    )
    ls.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"show at most N runs (default {DEFAULT_LIMIT})",
    )
    ls.add_argument(
        "--state",
        action="append",
        metavar="NAME",
        help="only runs in this state, by name or type, any case (Failed, TimedOut, "
        "running); repeat for several",
    )
    ls.add_argument("--flow", metavar="NAME", help="only runs of the flow with this name")
    ls.set_defaults(handler=list_flow_runs)

    inspect = subcommands.add_parser(
        "inspect",
        help="show one flow run: parameters, state history, task runs",
        description="Show one flow run: parameters, state history and task runs.",
    )
    inspect.add_argument("id", metavar="ID", help="the flow run's id (or a unique prefix)")
    inspect.set_defaults(handler=inspect_flow_run)

    logs = subcommands.add_parser(
        "logs", help="print a flow run's logs", description="Print a flow run's stored logs."
    )
    logs.add_argument("id", metavar="ID", help="the flow run's id (or a unique prefix)")
    logs.set_defaults(handler=show_flow_run_logs)

    retry = subcommands.add_parser(
        "retry",
        help="resume a failed flow run from where it failed",
        description="Run a Failed, Crashed or Cancelled flow run again as its next attempt, "
        "with the same parameters: task calls that completed with a persisted result are "
        "reused (recorded Cached), the rest run. The flow is loaded from the file or "
        "module it was started from. Exit code 0 when the run completes, 1 otherwise.",
    )
    retry.add_argument("id", metavar="ID", help="the flow run's id (or a unique prefix)")
    retry.set_defaults(handler=retry_flow_run)


def retry_flow_run(args: argparse.Namespace) -> int:
    from riverrun.flows import resume_flow_run

    with open_store() as store:
        run_id = store.read_flow_run(args.id).id  # a prefix becomes the full id here
    state = resume_flow_run(run_id)
    return 0 if state.is_completed() else 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# -- commands -----------------------------------------------------------------------------


def list_flow_runs(args: argparse.Namespace) -> int:
    """``flow-run ls``: print a table of flow runs, newest first."""
    with open_store() as store:
        _mark_crashed_runs(store)
        runs = store.read_flow_runs(limit=args.limit, state_names=args.state, flow_name=args.flow)
    print(render_flow_runs(runs))
    return 0


def inspect_flow_run(args: argparse.Namespace) -> int:
    """``flow-run inspect ID``: print one flow run with its states and task runs."""
    with open_store() as store:
        _mark_crashed_runs(store)
        run = store.read_flow_run(args.id)
        states = store.read_states(run.id)
        task_runs = store.read_task_runs(run.id)
    print(render_flow_run(run, states, task_runs))
    return 0


def show_flow_run_logs(args: argparse.Namespace) -> int:
    """``flow-run logs ID``: print a flow run's stored log lines in order."""
    with open_store() as store:
        run = store.read_flow_run(args.id)
        entries = store.read_logs(run.id)
    if not entries:
        print(f"No logs found for flow run {run.name!r}.")
    for entry in entries:
        print(format_log_line(entry))
    return 0


def _mark_crashed_runs(store: RunStore) -> None:
    # A convenience before reading, never a reason to fail it: if the sweep cannot run
    # (a read-only database, a lock held too long), show the history as it stands.
    try:
        store.mark_crashed_runs()
    except Exception:
        logger.debug("Could not look for crashed flow runs", exc_info=True)


# -- rendering (pure) ---------------------------------------------------------------------


def render_flow_runs(runs: Sequence[FlowRun]) -> str:
    """The ``ls`` table (or ``No flow runs found.``)."""
    if not runs:
        return "No flow runs found."
    return table(
        ["ID", "NAME", "FLOW", "STATE", "START", "DURATION"],
        [
            [
                run.id,
                run.name,
                run.flow_name,
                run.state.name if run.state else "-",
                format_time(run.start_time),
                format_duration(run.duration),
            ]
            for run in runs
        ],
    )


def render_flow_run(
    run: FlowRun, states: Sequence[StateRecord], task_runs: Sequence[TaskRun]
) -> str:
    """The ``inspect`` report: fields, parameters, state history, task runs."""
    import json

    fields: list[tuple[str, str]] = [
        ("ID", run.id),
        ("Name", run.name),
        ("Flow", run.flow_name),
        ("State", _describe(run.state)),
    ]
    if run.parent_flow_run_id:
        fields.append(("Parent flow run", run.parent_flow_run_id))
    fields += [
        ("Tags", ", ".join(run.tags) or "-"),
        ("Run count", str(run.run_count)),
        ("Created", format_time(run.created)),
        ("Start", format_time(run.start_time)),
        ("End", format_time(run.end_time)),
        ("Duration", format_duration(run.duration)),
    ]
    if run.pid is not None:
        fields.append(("Process", f"{run.pid} on {run.hostname or 'an unknown host'}"))
    if run.heartbeat is not None:
        fields.append(("Heartbeat", format_time(run.heartbeat)))
    width = max(len(label) for label, _ in fields) + 1
    lines = [f"Flow run {run.name!r}"]
    lines += [f"  {label + ':':<{width}}  {value}" for label, value in fields]

    lines += ["", "Parameters:"]
    parameters = json.dumps(run.parameters, indent=2, ensure_ascii=False, default=_json_default)
    lines += [f"  {line}" for line in parameters.splitlines()]

    lines += ["", "State history:"]
    if states:
        lines.append(
            table(
                ["TIME", "TYPE", "NAME", "MESSAGE"],
                [
                    [
                        format_time(state.timestamp, milliseconds=True),
                        state.type,
                        state.name,
                        one_line(state.message),
                    ]
                    for state in states
                ],
                indent="  ",
            )
        )
    else:
        lines.append("  (none)")

    lines += ["", "Task runs:"]
    if task_runs:
        names = {task_run.id: task_run.name for task_run in task_runs}
        lines.append(
            table(
                ["NAME", "TASK", "STATE", "START", "DURATION", "WAITED FOR", "SUBFLOW RUN"],
                [
                    [
                        task_run.name,
                        task_run.task_name,
                        task_run.state.name if task_run.state else "-",
                        format_time(task_run.start_time),
                        format_duration(task_run.duration),
                        ", ".join(names.get(i, i) for i in task_run.upstream_task_run_ids) or "-",
                        task_run.subflow_run_id or "-",
                    ]
                    for task_run in task_runs
                ],
                indent="  ",
            )
        )
    else:
        lines.append("  (none)")
    return "\n".join(lines)


def format_log_line(entry: LogEntry) -> str:
    """One stored log line in the console's shape: ``HH:MM:SS.mmm | LEVEL   | label - msg``."""
    level = logging.getLevelName(entry.level)
    return f"{format_clock(entry.timestamp)} | {level:<7} | {entry.logger} - {entry.message}"


def _describe(state: State | None) -> str:
    if state is None:
        return "-"
    return f"{state.name}: {one_line(state.message)}" if state.message else state.name


def _json_default(value: Any) -> str:
    # Stored parameters are JSON-safe already; this only guards against a store that
    # hands back something richer (a datetime from a custom backend).
    return str(value)
