"""Crashed-run detection, written once and run on SQLite and PostgreSQL.

Runs "left behind by another process" are recorded through a second store that is
closed at once, so nothing in this process heartbeats them; the store under test then
sweeps with ``mark_crashed_runs()``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from riverrun import flow, task
from riverrun.db import repository
from riverrun.db.engine import create_db_engine
from riverrun.names import new_id
from riverrun.settings import get_settings, temporary_settings
from riverrun.states import Cancelled, Completed, Crashed, Failed, Pending, Running, State
from riverrun.store import RunStore
from riverrun.store.embedded import EmbeddedStore
from riverrun.store.protocol import ConcurrencyHolder, FlowRun, SlotRequest, TaskRun
from riverrun.testing import riverrun_test_harness

HOST = socket.gethostname()
LONG_AGO = timedelta(hours=1)


@pytest.fixture
def run_store(database_url: str, tmp_path: Path) -> Iterator[RunStore]:
    """The store on this test's backend."""
    with riverrun_test_harness(tmp_path / "crashes", database_url=database_url) as store:
        yield store


def dead_pid() -> int:
    """The pid of a process of this host that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def left_behind(
    *,
    state: State | None = None,
    hostname: str | None = HOST,
    pid: int | None = None,
    age: timedelta = timedelta(0),
    task_states: tuple[State, ...] = (),
) -> FlowRun:
    """Record, through a store closed right after, a flow run last heard of ``age`` ago
    (with task runs in ``task_states``), as a process that then vanished leaves it."""
    seen = datetime.now(UTC) - age
    run = FlowRun(
        id=new_id(),
        name="left-behind",
        flow_name="left-behind",
        state=state or Running(),
        created=seen,
        hostname=hostname,
        pid=pid,
        heartbeat=seen,
    )
    writer = EmbeddedStore(get_settings())
    try:
        writer.create_flow_run(run)
        for position, task_state in enumerate(task_states):
            writer.record_task_run(
                TaskRun(
                    id=new_id(),
                    name=f"step-{position}",
                    task_name="step",
                    flow_run_id=run.id,
                    dynamic_key=position,
                    state=task_state,
                    created=seen,
                )
            )
    finally:
        writer.close()
    return run


def state_of(store: RunStore, run_id: str) -> State:
    state = store.read_flow_run(run_id).state
    assert state is not None
    return state


def test_a_run_whose_process_is_gone_is_crashed_with_its_unfinished_task_runs(
    run_store: RunStore,
) -> None:
    pid = dead_pid()
    run = left_behind(pid=pid, task_states=(Completed(), Running(), Pending()))

    before = datetime.now(UTC)
    assert run_store.mark_crashed_runs() == [run.id]

    crashed = run_store.read_flow_run(run.id)
    assert crashed.state is not None and crashed.state.is_crashed()
    assert crashed.state.name == "Crashed"
    assert crashed.state.message == f"Process {pid} on {HOST} is gone"
    assert crashed.end_time is not None and crashed.end_time >= before
    history = run_store.read_states(run.id)
    assert [(r.type, r.name) for r in history] == [("RUNNING", "Running"), ("CRASHED", "Crashed")]
    assert history[-1].message == crashed.state.message

    task_runs = {t.name: t for t in run_store.read_task_runs(run.id)}
    assert {name: t.state.name for name, t in task_runs.items() if t.state} == {
        "step-0": "Completed",
        "step-1": "Crashed",
        "step-2": "Crashed",
    }
    assert [r.name for r in run_store.read_states(task_runs["step-0"].id)] == ["Completed"]
    for name in ("step-1", "step-2"):
        records = run_store.read_states(task_runs[name].id)
        assert [r.name for r in records][-1] == "Crashed"
        assert records[-1].message == crashed.state.message
        assert task_runs[name].end_time is not None


def test_a_run_of_this_process_with_a_fresh_heartbeat_is_alive(run_store: RunStore) -> None:
    run = left_behind(pid=os.getpid())
    assert run_store.mark_crashed_runs() == []
    assert state_of(run_store, run.id).name == "Running"


def test_a_run_on_another_host_is_judged_by_its_heartbeat(run_store: RunStore) -> None:
    pid = dead_pid()  # gone here, but it names a process of the other host
    fresh = left_behind(hostname="elsewhere", pid=pid)
    stale = left_behind(hostname="elsewhere", pid=pid, age=LONG_AGO)

    assert run_store.mark_crashed_runs() == [stale.id]
    assert state_of(run_store, fresh.id).name == "Running"
    crashed = state_of(run_store, stale.id)
    assert crashed.is_crashed()
    assert crashed.message is not None and crashed.message.startswith("No heartbeat since ")


def test_a_silent_run_of_a_live_pid_here_is_crashed(run_store: RunStore) -> None:
    # A pid can be reused (a container restarted): silence wins over a live pid.
    run = left_behind(pid=os.getpid(), age=LONG_AGO)
    assert run_store.mark_crashed_runs() == [run.id]


def test_a_run_recorded_without_a_heartbeat_is_judged_by_its_creation(
    run_store: RunStore, database_url: str
) -> None:
    # As runs recorded before heartbeats existed (revision 0001) look.
    def record(age: timedelta) -> FlowRun:
        run = FlowRun(
            id=new_id(),
            name="old",
            flow_name="old",
            state=Pending(),
            created=datetime.now(UTC) - age,
        )
        engine = create_db_engine(database_url)
        try:
            with engine.begin() as connection:
                repository.insert_flow_run(connection, run)
        finally:
            engine.dispose()
        return run

    old, new = record(LONG_AGO), record(timedelta(0))
    assert run_store.read_flow_run(old.id).heartbeat is None
    assert run_store.mark_crashed_runs() == [old.id]
    assert state_of(run_store, new.id).name == "Pending"


@pytest.mark.parametrize("final", [Completed, Failed, Cancelled, Crashed])
def test_a_finished_run_is_never_touched(run_store: RunStore, final: Callable[[], State]) -> None:
    state = final()
    run = left_behind(state=state, pid=dead_pid(), age=LONG_AGO, task_states=(Running(),))
    assert run_store.mark_crashed_runs() == []
    assert state_of(run_store, run.id).name == state.name
    assert [r.name for r in run_store.read_states(run.id)] == [state.name]
    [task_run] = run_store.read_task_runs(run.id)
    assert task_run.state is not None and task_run.state.name == "Running"


def test_sweeping_twice_or_at_once_writes_one_crashed_state(run_store: RunStore) -> None:
    run = left_behind(pid=dead_pid(), task_states=(Running(),))
    sweepers = [EmbeddedStore(get_settings()) for _ in range(4)]
    barrier = threading.Barrier(len(sweepers))
    found: list[list[str]] = []

    def sweep(store: EmbeddedStore) -> None:
        barrier.wait()
        found.append(store.mark_crashed_runs())

    threads = [threading.Thread(target=sweep, args=(store,)) for store in sweepers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for store in sweepers:
            store.close()
    assert sorted(found) == [[], [], [], [run.id]]
    assert run_store.mark_crashed_runs() == []

    assert [r.name for r in run_store.read_states(run.id)] == ["Running", "Crashed"]
    [task_run] = run_store.read_task_runs(run.id)
    assert [r.name for r in run_store.read_states(task_run.id)] == ["Running", "Crashed"]


def test_flow_runs_record_their_process_and_finish_alive(run_store: RunStore) -> None:
    @task
    def one() -> int:
        return 1

    @flow
    def recorded() -> int:
        return one()

    assert recorded() == 1
    [run] = run_store.read_flow_runs(flow_name="recorded")
    assert (run.hostname, run.pid) == (HOST, os.getpid())
    assert run.heartbeat is not None and run.created is not None
    assert run.heartbeat >= run.created
    assert run_store.mark_crashed_runs() == []
    assert state_of(run_store, run.id).is_completed()


def test_the_store_heartbeats_its_unfinished_runs_only(database_url: str, tmp_path: Path) -> None:
    with (
        temporary_settings(heartbeat_interval="0.05"),
        riverrun_test_harness(tmp_path / "beats", database_url=database_url) as store,
    ):
        running = FlowRun(id=new_id(), name="r", flow_name="beating", state=Running())
        ending = FlowRun(id=new_id(), name="e", flow_name="beating", state=Running())
        store.create_flow_run(running)
        store.create_flow_run(ending)
        store.set_state(ending, Completed())
        store.flush()
        first = {run.id: run.heartbeat for run in store.read_flow_runs()}
        time.sleep(0.5)
        later = {run.id: run.heartbeat for run in store.read_flow_runs()}
    assert later[ending.id] == first[ending.id]
    before, after = first[running.id], later[running.id]
    assert before is not None and after is not None and after > before


def test_the_heartbeat_interval_is_validated() -> None:
    for value, problem in [("soon", "is not a number"), ("0", "must be a positive")]:
        with (
            temporary_settings(heartbeat_interval=value),
            pytest.raises(ValueError, match=f"RIVERRUN_HEARTBEAT_INTERVAL='{value}' {problem}"),
        ):
            get_settings()
    with temporary_settings(heartbeat_interval=None):
        assert get_settings().heartbeat_interval == 10


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_heartbeats_its_own_runs_and_not_its_parents(tmp_path: Path) -> None:
    with (
        temporary_settings(heartbeat_interval="0.05"),
        riverrun_test_harness(tmp_path / "fork") as store,
    ):
        parents = FlowRun(id=new_id(), name="p", flow_name="forking", state=Running())
        childs = FlowRun(id=new_id(), name="c", flow_name="forking", state=Running())
        store.create_flow_run(parents)
        pid = os.fork()
        if pid == 0:  # the child: record a run of its own, live a while, vanish
            code = 1
            try:
                store.create_flow_run(childs)
                time.sleep(0.6)
                code = 0
            finally:
                os._exit(code)
        # The parent stops beating its run; only the child could keep it fresh now.
        store.set_state(parents, Completed())
        store.flush()
        time.sleep(0.1)
        stopped = store.read_flow_run(parents.id).heartbeat
        _, status = os.waitpid(pid, 0)
        assert status == 0
        assert store.read_flow_run(parents.id).heartbeat == stopped
        child_run = store.read_flow_run(childs.id)
        assert child_run.heartbeat is not None and child_run.created is not None
        assert child_run.heartbeat - child_run.created > timedelta(seconds=0.2)


def test_a_crashed_run_frees_its_concurrency_slots_at_once(run_store: RunStore) -> None:
    run = left_behind(pid=dead_pid())
    run_store.create_concurrency_limit("db", 1)

    def ask(flow_run_id: str) -> bool:
        holder = ConcurrencyHolder(flow_run_id=flow_run_id, hostname=HOST)
        request = SlotRequest(names=("db",), occupy=1, hold=True, lease_seconds=60, holder=holder)
        grant = run_store.acquire_concurrency_slots(request)
        if not grant.granted and grant.ticket is not None:
            run_store.leave_concurrency_line(grant.ticket, ("db",))
        return grant.granted

    assert ask(run.id)
    assert not ask("someone-else")
    assert run_store.mark_crashed_runs() == [run.id]
    assert ask("someone-else")
