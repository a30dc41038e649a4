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
import json
import math
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riverrun.engine.results import OverwrittenResultError, ResultRef, read_result, write_result
from riverrun.exceptions import ResumeError
from riverrun.names import SCRIPT_MODULE
from riverrun.states import StateType

if TYPE_CHECKING:
    from riverrun.context import FlowRunContext
    from riverrun.flows import Flow
    from riverrun.logging import RunLogger
    from riverrun.store.protocol import FlowRun, RunStore, TaskRun
    from riverrun.tasks import Task

__all__ = [
    "Resume",
    "can_reuse",
    "earlier_results",
    "keep_parameters",
    "load_flow",
    "loading_entrypoint",
    "prepare_resume",
    "resume_parameters",
    "take_earlier",
]

_RESUMABLE = (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)

#: True while a flow's file is being loaded to resume one of its runs: flow calls made
#: at the top level of that file are skipped.
loading_entrypoint: ContextVar[bool] = ContextVar("riverrun_loading_entrypoint", default=False)


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


def _exact(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` comes back equal, and of the same types, from JSON."""
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if depth > 32:
        return False
    if type(value) is list:
        return all(_exact(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _exact(v, depth + 1) for k, v in value.items())
    return False


def keep_parameters(arguments: dict[str, Any], flow_run_id: str, storage: Path) -> str | None:
    """Keep a new flow run's exact arguments when their JSON form is not exact (a date,
    a tuple, an object): a pickle in ``storage``, named by the returned reference; or
    why that failed. ``None`` when the JSON form is exact (nearly always: no file)."""
    if _exact(arguments):
        return None
    ref = ResultRef(str(storage), f"parameters/{flow_run_id}", "cloudpickle")
    try:
        return write_result(ref, arguments).encode()
    except Exception as error:
        return json.dumps({"unavailable": f"{type(error).__name__}: {error}"})


def resume_parameters(run: FlowRun, home: Path) -> dict[str, Any]:
    """The arguments a resumed run is called with again.

    Raises:
        ResumeError: they were not stored exactly and cannot be read back.
    """
    if run.resume_parameters is None:
        return dict(run.parameters)
    label = f"flow run {run.name!r} ({run.id})"
    fields = json.loads(run.resume_parameters)
    if "unavailable" in fields:
        reason = fields["unavailable"]
    else:
        try:
            kept = read_result(ResultRef.decode(run.resume_parameters, home))
            return dict(kept)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
    raise ResumeError(
        f"The parameters of {label} could not be kept exactly ({reason}); resume it from "
        "Python with riverrun.resume_flow_run(id, parameters={...})"
    )


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
    token = loading_entrypoint.set(True)
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
    finally:
        loading_entrypoint.reset(token)
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


def can_reuse(
    flow_context: FlowRunContext,
    task: Task[..., Any],
    key: tuple[str, int],
    parameters: dict[str, Any],
) -> bool:
    """Whether ``take_earlier`` would find a reusable result (without reading it)."""
    from riverrun.engine.caching import inputs_digest

    earlier = (flow_context.earlier or {}).get(key)
    if earlier is None or earlier.result is None:
        return False
    try:
        ref = ResultRef.decode(earlier.result, flow_context.settings.home)
    except ValueError:
        return False
    return (
        ref.task == task.identity()
        and ref.inputs is not None
        and ref.inputs == inputs_digest(parameters)
    )


def take_earlier(
    flow_context: FlowRunContext,
    task: Task[..., Any],
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
        if ref.task != task.identity():
            logger.info("Running again: %s was made by another task or another version", where)
            return None
        if ref.inputs is None:
            logger.info("Running again: the inputs of %s could not be hashed", where)
            return None
        if ref.inputs != inputs_digest(parameters):
            logger.info("Running again: its inputs differ from those of %s", where)
            return None
        return read_result(ref), earlier
    except FileNotFoundError:
        logger.warning("Running again: the persisted result of %s is gone", where)
    except OverwrittenResultError:
        logger.warning("Running again: the persisted result of %s was overwritten", where)
    except Exception as error:
        logger.warning(
            "Running again: the persisted result of %s cannot be read (%s: %s)",
            where,
            type(error).__name__,
            error,
        )
    return None
