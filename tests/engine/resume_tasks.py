"""A flow on a process pool for test_resume (importable by the pool's workers)."""

from __future__ import annotations

from pathlib import Path

from riverrun import flow, task
from riverrun.task_runners import ProcessPoolTaskRunner


@task
def double(x: int) -> int:
    return 2 * x


@task
def check(values: list[int], marker: str) -> list[int]:
    if Path(marker).exists():
        raise RuntimeError("marker present")
    return values


@flow(persist_result=True, task_runner=ProcessPoolTaskRunner(max_workers=2))
def pipeline_on_processes(marker: str) -> list[int]:
    doubled = double.map([1, 2, 3]).result()
    return check.submit(doubled, marker).result()
