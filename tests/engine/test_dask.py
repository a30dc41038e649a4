"""DaskTaskRunner against real ``distributed`` clusters of worker processes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from riverrun import flow, get_run_logger, task
from riverrun.exceptions import TaskRunnerError, UpstreamTaskError
from riverrun.store import RunStore

distributed = pytest.importorskip("distributed", reason="needs riverrun[dask]")

CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A LocalCluster of two worker processes, shared by the tests that connect to it."""
    with distributed.LocalCluster(**CLUSTER) as local:
        yield local


def worker_pids(address: str) -> set[int]:
    with distributed.Client(address) as client:
        return set(client.run(os.getpid).values())


@task
def square(n: int) -> tuple[int, int]:
    get_run_logger().info("squaring %d", n)
    time.sleep(0.1)
    return n * n, os.getpid()


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def refuse(n: int) -> int:
    raise ValueError(f"refused {n}")


def test_a_flow_starts_its_own_local_cluster(store: RunStore) -> None:
    from riverrun.dask import DaskTaskRunner

    @flow(task_runner=DaskTaskRunner(cluster_kwargs=CLUSTER))
    def crunch() -> list[tuple[int, int]]:
        return square.map(range(6)).result()

    results = crunch()
    assert [value for value, _ in results] == [n * n for n in range(6)]
    pids = {pid for _, pid in results}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2
    [run] = store.read_flow_runs()
    task_runs = store.read_task_runs(run.id)
    assert len(task_runs) == 6
    assert all(r.state is not None and r.state.is_completed() for r in task_runs)
    messages = [entry.message for entry in store.read_logs(run.id)]
    assert all(f"squaring {n}" in messages for n in range(6))


def test_tasks_run_on_an_existing_cluster_s_workers(store: RunStore, cluster: Any) -> None:
    from riverrun.dask import DaskTaskRunner

    @flow(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
    def pipeline() -> tuple[int, set[int]]:
        squares = square.map(range(4))
        total = add.submit(add.submit(1, 2), add.submit(3, 4))
        return total.result(), {pid for _, pid in squares.result()}

    total, pids = pipeline()
    assert total == 10
    assert pids <= worker_pids(cluster.scheduler_address)
    [run] = store.read_flow_runs()
    runs = store.read_task_runs(run.id)
    [final] = [r for r in runs if r.task_name == "add" and len(r.upstream_task_run_ids) == 2]
    assert final.state is not None and final.state.is_completed()


def test_failures_propagate_from_dask_workers(store: RunStore, cluster: Any) -> None:
    from riverrun.dask import DaskTaskRunner

    @flow(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
    def pipeline() -> None:
        refused = refuse.submit(1)
        after = add.submit(refused, 1)
        after.wait()
        assert after.state.name == "NotReady"
        with pytest.raises(UpstreamTaskError):
            after.result()

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, ValueError)
    assert "refused 1" in str(state.data)


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    from riverrun.dask import DaskTaskRunner

    @flow(task_runner=DaskTaskRunner(address="tcp://127.0.0.1:9", client_kwargs={"timeout": 1}))
    def pipeline() -> None:
        add.submit(1, 2)

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, TaskRunnerError)
    assert "tcp://127.0.0.1:9" in str(state.data)


def test_dask_runner_options_are_checked() -> None:
    from riverrun.dask import DaskTaskRunner

    with pytest.raises(ValueError, match="either address"):
        DaskTaskRunner(address="tcp://x:1", cluster_kwargs={"n_workers": 1})
    with pytest.raises(ValueError, match="cannot be imported"):
        DaskTaskRunner(cluster_class="no_such_module.Cluster")._resolve_cluster_class(distributed)
