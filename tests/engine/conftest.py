"""``mode``: run one behaviour test on the sync and the async engine paths.

Test bodies are written once, as plain functions. The fixture decorates them as they
are (sync flow, sync tasks), as async tasks called from a sync flow, or as an async
flow calling sync tasks, so the same assertions cover both drivers for flows and tasks.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from riverrun import Flow, Task, flow, task


def _as_async(body: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(body)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return body(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Mode:
    async_flows: bool
    async_tasks: bool

    def task(self, **options: Any) -> Callable[[Callable[..., Any]], Task[..., Any]]:
        def decorate(body: Callable[..., Any]) -> Task[..., Any]:
            return task(**options)(_as_async(body) if self.async_tasks else body)

        return decorate

    def flow(self, **options: Any) -> Callable[[Callable[..., Any]], Flow[..., Any]]:
        def decorate(body: Callable[..., Any]) -> Flow[..., Any]:
            return flow(**options)(_as_async(body) if self.async_flows else body)

        return decorate

    def run(self, flow_: Flow[..., Any], *args: Any, **kwargs: Any) -> Any:
        result = flow_(*args, **kwargs)
        if self.async_flows:
            result = asyncio.run(result)
        return result


@pytest.fixture(
    params=[Mode(False, False), Mode(False, True), Mode(True, False)],
    ids=["sync", "async-tasks", "async-flow"],
)
def mode(request: pytest.FixtureRequest) -> Mode:
    """How the test's flows and tasks are decorated (see the module docstring)."""
    assert isinstance(request.param, Mode)
    return request.param
