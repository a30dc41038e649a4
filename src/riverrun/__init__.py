"""riverrun: decorate functions with ``@flow`` and ``@task``; get retries, timeouts,
caching, logging and a run history with no infrastructure.

Example:
    >>> from riverrun import flow, task
    >>> @task(retries=2)
    ... def fetch() -> list[int]: ...
    >>> @flow
    ... def pipeline() -> list[int]:
    ...     return fetch()
"""

from riverrun._version import __version__
from riverrun.annotations import allow_failure, unmapped
from riverrun.context import tags
from riverrun.flows import Flow, flow, resume_flow_run
from riverrun.logging import get_run_logger
from riverrun.states import State
from riverrun.tasks import Task, task

__all__ = [
    "Flow",
    "State",
    "Task",
    "__version__",
    "allow_failure",
    "flow",
    "get_run_logger",
    "resume_flow_run",
    "tags",
    "task",
    "unmapped",
]
