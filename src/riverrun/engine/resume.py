"""Resuming a failed flow run from where it failed.

``resume_flow_run(id)`` runs the flow again as a new attempt of the same flow run, with
the parameters it was called with. Each task call is matched to the earlier attempts'
task runs by (task key, call index) — the n-th call of a task in the flow's body, which
is the same from one attempt to the next when the body makes the same calls. A call
whose earlier run completed with a persisted result, for the same inputs (a digest is
kept with the result), is recorded Cached with that result instead of running; every
other call runs: the failed one, those after it, and those whose result was not
persisted (a line in the log says why).

The flow is the one given, or loaded from the run's recorded entrypoint: a script
(``path/to/file.py:flow``, loaded under the module name ``__riverrun_main__`` so its
``if __name__ == "__main__":`` block does not run, and whose task keys match those of
the run started as ``python file.py``) or an importable module (``package.module:flow``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riverrun.engine.results import ResultRef, read_result
from riverrun.exceptions import ResumeError
from riverrun.names import SCRIPT_MODULE
from riverrun.states import StateType

if TYPE_CHECKING:
    from riverrun.context import FlowRunContext
    from riverrun.flows import Flow
    from riverrun.logging import RunLogger
    from riverrun.store.protocol import FlowRun, RunStore, TaskRun

__all__ = ["Resume", "earlier_results", "load_flow", "prepare_resume", "take_earlier"]

_RESUMABLE = (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)


@dataclass(slots=True)
class Resume:
    """A flow run to continue, and its earlier task runs that completed."""

    flow_run: FlowRun
    earlier: dict[tuple[str, int], TaskRun]


def earlier_results(task_runs: list[TaskRun]) -> dict[tuple[str, int], TaskRun]:
    """The latest completed task run of each (task key, call index)."""
    found: dict[tuple[str, int], TaskRun] = {}
    for run in task_runs:  # in creation order: a later attempt's run wins
        if (
            run.task_key is not None
            and run.subflow_run_id is None
            and run.state is not None
            and run.state.type is StateType.COMPLETED
        ):
            found[(run.task_key, run.dynamic_key)] = run
    return found


def prepare_resume(store: RunStore, flow_run_id: str) -> Resume:
    """Read a flow run and check it can be resumed.

    Raises:
        ObjectNotFoundError: no such flow run.
        ResumeError: it is a subflow run, or it did not end Failed/Crashed/Cancelled.
    """
    run = store.read_flow_run(flow_run_id)
    if run.parent_flow_run_id is not None:
        raise ResumeError(
            f"Flow run {run.name!r} ({run.id}) is a subflow run; resume its parent flow "
            f"run {run.parent_flow_run_id} instead"
        )
    if run.state is None or run.state.type not in _RESUMABLE:
        state = run.state.name if run.state is not None else "no state"
        raise ResumeError(
            f"Flow run {run.name!r} ({run.id}) is {state}; only Failed, Crashed or "
            "Cancelled flow runs can be resumed"
        )
    return Resume(run, earlier_results(store.read_task_runs(run.id)))


def load_flow(entrypoint: str | None, flow_run: FlowRun) -> Flow[..., Any]:
    """The flow at ``entrypoint`` (``file.py:name`` or ``module:name``).

    Raises:
        ResumeError: no entrypoint, the file or module cannot be loaded, or the name is
            not a flow there.
    """
    from riverrun.flows import Flow

    label = f"flow run {flow_run.name!r} ({flow_run.id})"
    if not entrypoint or ":" not in entrypoint:
        raise ResumeError(f"Cannot tell where the flow of {label} is defined (no entrypoint)")
    target, _, qualname = entrypoint.rpartition(":")
    if "<locals>" in qualname:
        raise ResumeError(
            f"The flow of {label} was defined inside a function ({qualname}), so it cannot "
            "be loaded again; call riverrun.resume_flow_run(id, flow=the_flow) from Python"
        )
    try:
        if target.endswith(".py"):
            module = _load_script(Path(target))
        else:
            if "" not in sys.path:
                sys.path.insert(0, "")  # the current directory, as `python -m` does
            module = importlib.import_module(target)
    except ResumeError:
        raise
    except Exception as error:
        raise ResumeError(
            f"Could not load {target} for {label}: {type(error).__name__}: {error}"
        ) from error
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not isinstance(found, Flow):
        raise ResumeError(f"{entrypoint} is not a flow (needed to resume {label})")
    if found.name != flow_run.flow_name:
        raise ResumeError(
            f"{entrypoint} is now flow {found.name!r}, but {label} ran flow {flow_run.flow_name!r}"
        )
    return found


def _load_script(path: Path) -> Any:
    if not path.is_file():
        raise ResumeError(f"The flow's file {path} no longer exists")
    spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, path)
    if spec is None or spec.loader is None:
        raise ResumeError(f"Cannot load {path} as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.modules[SCRIPT_MODULE] = module
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the script's own imports, as when it was run
    spec.loader.exec_module(module)
    return module


def take_earlier(
    flow_context: FlowRunContext,
    key: tuple[str, int],
    parameters: dict[str, Any],
    logger: RunLogger,
) -> tuple[Any, TaskRun] | None:
    """The result of this call's completed run in an earlier attempt, and that run; or
    ``None`` (logged) when the call must run again."""
    from riverrun.engine.caching import inputs_digest

    assert flow_context.earlier is not None
    earlier = flow_context.earlier.pop(key, None)
    if earlier is None:
        return None
    where = f"task run {earlier.name!r} ({earlier.id})"
    if earlier.result is None:
        logger.info("Running again: %s completed, but its result was not persisted", where)
        return None
    try:
        ref = ResultRef.decode(earlier.result, flow_context.settings.home)
        if ref.inputs is None or ref.inputs != inputs_digest(parameters):
            logger.info("Running again: its inputs differ from those of %s", where)
            return None
        return read_result(ref), earlier
    except FileNotFoundError:
        logger.warning("Running again: the persisted result of %s is gone", where)
    except Exception as error:
        logger.warning(
            "Running again: the persisted result of %s cannot be read (%s: %s)",
            where,
            type(error).__name__,
            error,
        )
    return None
