"""The writer process: the embedded store's events committed by a child process.

Every test here uses the real thing: a flow in this process (or in a script run as a
subprocess), its writer started with ``sys.executable``, the SQLite file they share.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from riverrun import flow, get_run_logger, task
from riverrun.exceptions import StoreUnavailableError
from riverrun.settings import get_settings, temporary_settings
from riverrun.store import RunStore, close_stores, get_store
from riverrun.store.embedded import EmbeddedStore
from riverrun.store.writer import wait_for_writers, writers_folder
from tests.postgres import BACKENDS, empty_database


@pytest.fixture
def writer_store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """A fresh store that hands its events to a writer process from the first flush."""
    close_stores()
    with temporary_settings(home=str(tmp_path / "writer-home"), store_writer="process"):
        store = get_store(get_settings())
        assert isinstance(store, EmbeddedStore)
        yield store
        close_stores()


def _wait_until_ready(store: EmbeddedStore) -> int:
    """Flush until the writer has taken over; its pid."""
    deadline = time.monotonic() + 60
    while store._writer is None or not store._writer.ready:
        assert time.monotonic() < deadline, "the writer process never became ready"
        store.flush()
        time.sleep(0.02)
    return store._writer.pid


@task
def double(x: int) -> int:
    get_run_logger().info("doubling %d", x)
    return 2 * x


@flow
def doubles(n: int) -> int:
    return sum(double(i) for i in range(n))


def test_runs_are_recorded_by_a_process_of_their_own(writer_store: EmbeddedStore) -> None:
    doubles(3)  # the first flushes open the writer
    writer_pid = _wait_until_ready(writer_store)
    assert writer_pid != os.getpid()

    assert doubles(300) == 2 * sum(range(300))
    assert writer_store._writer is not None and writer_store._writer.pid == writer_pid
    run = next(r for r in writer_store.read_flow_runs() if r.parameters == {"n": 300})
    assert run.state is not None and run.state.is_completed()
    task_runs = writer_store.read_task_runs(run.id)
    assert len(task_runs) == 300
    assert all(t.state is not None and t.state.is_completed() for t in task_runs)
    states = writer_store.read_states(task_runs[-1].id)
    assert [s.name for s in states] == ["Pending", "Running", "Completed"]
    messages = [log.message for log in writer_store.read_logs(run.id)]
    assert sum(message.startswith("doubling ") for message in messages) == 300
    # The writer holds its lock while it lives, and removes it when the store closes.
    lock = (
        writers_folder(writer_store._settings.home) / f"{socket.gethostname()}-{os.getpid()}.lock"
    )
    assert lock.exists()
    database = writer_store._db.path  # type: ignore[attr-defined]
    close_stores()
    assert not lock.exists()
    # Its progress mark is removed once every batch is confirmed.
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM writer_marks").fetchone() == (0,)


def test_a_killed_writer_loses_nothing(writer_store: EmbeddedStore) -> None:
    doubles(3)
    writer_pid = _wait_until_ready(writer_store)

    @task
    def step(i: int) -> int:
        if i == 150:
            os.kill(writer_pid, signal.SIGKILL)
            os.waitpid(writer_pid, 0)
        return i

    @flow
    def steps() -> int:
        total = 0
        for i in range(300):
            total += step(i)
            if i % 50 == 0:
                writer_store._drain()  # hand batches over before and after the kill
        return total

    assert steps() == sum(range(300))
    assert writer_store._writer is None  # this process writes from now on
    run = next(r for r in writer_store.read_flow_runs() if r.flow_name == "steps")
    assert run.state is not None and run.state.is_completed()
    task_runs = writer_store.read_task_runs(run.id)
    assert sorted(t.dynamic_key for t in task_runs) == list(range(300))
    assert all(t.state is not None and t.state.is_completed() for t in task_runs)
    for task_run in task_runs:
        names = [s.name for s in writer_store.read_states(task_run.id)]
        assert names == ["Pending", "Running", "Completed"], task_run.name


def test_the_writer_ignores_sigint_in_a_session_of_its_own(writer_store: EmbeddedStore) -> None:
    doubles(3)
    writer_pid = _wait_until_ready(writer_store)
    assert os.getsid(writer_pid) == writer_pid  # a process group's signals miss it
    if os.path.exists(f"/proc/{writer_pid}/status"):
        with open(f"/proc/{writer_pid}/status") as status:
            [ignored] = [line.split()[1] for line in status if line.startswith("SigIgn:")]
        assert int(ignored, 16) & (1 << (signal.SIGINT - 1))
    os.kill(writer_pid, signal.SIGINT)
    assert doubles(50) == 2 * sum(range(50))
    writer_store.flush()
    assert writer_store._writer is not None and writer_store._writer.pid == writer_pid
    run = next(r for r in writer_store.read_flow_runs() if r.parameters == {"n": 50})
    assert len(writer_store.read_task_runs(run.id)) == 50


def _log_in_child(i: int) -> int:
    get_run_logger().info("child %d says hi", i)
    return i


def test_modules_in_the_working_folder_do_not_shadow_the_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer is started with ``-c``, which would put the working folder first on
    # its module path: a user's ``types.py`` there must not replace the standard one.
    work = tmp_path / "work"
    work.mkdir()
    for name in ("types", "select", "struct"):
        (work / f"{name}.py").write_text("raise ImportError('shadowed: ' + __name__)\n")
    monkeypatch.chdir(work)
    close_stores()
    with temporary_settings(home=str(tmp_path / "home"), store_writer="process"):
        store = get_store(get_settings())
        assert isinstance(store, EmbeddedStore)

        @flow
        def pipeline() -> int:
            return sum(double(i) for i in range(20))

        assert pipeline() == 380  # its events start the writer
        deadline = time.monotonic() + 60
        while store._writer is None or not store._writer.ready:
            assert store._writer_mode == "process", "the writer process stopped"
            assert time.monotonic() < deadline, "the writer process never became ready"
            store.flush()
            time.sleep(0.02)
        writer = store._writer
        assert pipeline() == 380
        assert store._writer is writer and store._writer_mode == "process"
        runs = store.read_flow_runs()
        assert [len(store.read_task_runs(run.id)) for run in runs] == [20, 20]
    close_stores()


def test_forked_children_neither_use_nor_hold_the_writer(writer_store: EmbeddedStore) -> None:
    import multiprocessing

    doubles(3)
    _wait_until_ready(writer_store)

    @task
    def fan_out() -> list[int]:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            return pool.map(_log_in_child, range(4))

    @flow
    def pipeline() -> list[int]:
        return fan_out()

    assert pipeline() == [0, 1, 2, 3]
    run = next(r for r in writer_store.read_flow_runs() if r.flow_name == "pipeline")
    messages = {log.message for log in writer_store.read_logs(run.id)}
    assert {f"child {i} says hi" for i in range(4)} <= messages
    assert writer_store._writer is not None and writer_store._writer.ready


_SCRIPT = textwrap.dedent(
    """
    import os, sys, time

    from riverrun import flow, task
    from riverrun.store import get_store

    @task
    def step(i: int) -> int:
        return i

    @flow(name="interrupted")
    def interrupted() -> None:
        store = get_store()
        step(-1)
        while store._writer is None or not store._writer.ready:
            store.flush()
            time.sleep(0.02)
        for i in range(400):
            step(i)
        store._drain()  # handed to the writer, not confirmed yet
        print("handed", store._writer.pid, flush=True)
        time.sleep(60)

    interrupted()
    """
)


@pytest.mark.slow
def test_the_writer_finishes_what_it_was_handed_when_its_parent_is_killed(
    tmp_path: Path, store: RunStore
) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(_SCRIPT)
    home = tmp_path / "killed-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
    # A long flush interval: the 400 runs' events travel to the writer in one batch.
    env.update(RIVERRUN_HOME=str(home), RIVERRUN_STORE_WRITER="process")
    env.update(RIVERRUN_FLUSH_INTERVAL="30", RIVERRUN_LOGGING_LEVEL="WARNING")
    child = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("handed"), line
    writer_pid = int(line.split()[1])
    child.kill()
    child.wait()
    child.stdout.close()

    with temporary_settings(home=str(home)):
        close_stores()
        swept = get_store(get_settings())
        crashed = swept.mark_crashed_runs()  # waits for the writer to finish first
        [run] = swept.read_flow_runs()
        assert crashed == [run.id]
        task_runs = swept.read_task_runs(run.id)
        assert len(task_runs) == 401
        assert all(t.state is not None and t.state.name == "Completed" for t in task_runs)
        close_stores()
    assert _exits(writer_pid), "the writer outlived its work"
    # The writer left its mark for a parent that was gone; the sweep removed it.
    with sqlite3.connect(home / "riverrun.db") as connection:
        assert connection.execute("SELECT * FROM writer_marks").fetchall() == []


def test_the_crash_sweep_removes_only_the_marks_of_dead_processes_of_this_host(
    tmp_path: Path,
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    marks = {
        f"{host}-{dead.pid}-{dead.pid + 1}": "removed",
        f"{host}-{os.getpid()}-{dead.pid}": "kept: its process lives",
        f"another-host-{dead.pid}-{dead.pid + 1}": "kept: another host's to judge",
        "not-a-writer-key": "kept: not ours",
    }
    close_stores()
    with temporary_settings(home=str(tmp_path / "home")):
        store = get_store(get_settings())
        assert isinstance(store, EmbeddedStore)
        path = get_settings().home / "riverrun.db"
        with sqlite3.connect(path) as connection:
            connection.executemany(
                "INSERT INTO writer_marks (writer, seq) VALUES (?, 7)", [(key,) for key in marks]
            )
        store.mark_crashed_runs()
        with sqlite3.connect(path) as connection:
            left = {row[0] for row in connection.execute("SELECT writer FROM writer_marks")}
        assert left == {key for key, fate in marks.items() if fate != "removed"}
        close_stores()


def _exits(pid: int, within: float = 30.0) -> bool:
    """Whether ``pid`` exits within the time (a zombie nobody reaps counts as exited)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rpartition(")")[2].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_the_crash_sweep_waits_for_a_dead_processs_writer(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = writers_folder(tmp_path)
    folder.mkdir(parents=True)
    lock = folder / f"{socket.gethostname()}-{dead.pid}.lock"
    held = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    released_at: list[float] = []

    def finish_later() -> None:
        time.sleep(0.3)
        released_at.append(time.monotonic())
        fcntl.flock(held, fcntl.LOCK_UN)

    finisher = threading.Thread(target=finish_later)
    finisher.start()
    alive = {os.getpid()}
    wait_for_writers(tmp_path, lambda pid: pid in alive)
    done_at = time.monotonic()
    finisher.join()
    os.close(held)
    assert released_at and done_at >= released_at[0]
    assert not lock.exists()


def test_the_sweep_leaves_a_living_processs_writer_alone(tmp_path: Path) -> None:
    folder = writers_folder(tmp_path)
    folder.mkdir(parents=True)
    lock = folder / f"{socket.gethostname()}-{os.getpid()}.lock"
    held = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        wait_for_writers(tmp_path, lambda pid: True)  # returns at once: not waited on
        assert lock.exists()
    finally:
        os.close(held)


def test_an_unknown_writer_setting_is_refused_by_name() -> None:
    with temporary_settings(store_writer="fast"), pytest.raises(ValueError) as caught:
        get_settings()
    assert "RIVERRUN_STORE_WRITER='fast'" in str(caught.value)


@pytest.mark.parametrize(("mode", "starts"), [("auto", True), ("thread", False)])
def test_auto_hands_over_once_a_process_records_a_lot(
    tmp_path: Path, mode: str, starts: bool
) -> None:
    from riverrun.store.embedded import _WRITER_AFTER

    close_stores()
    with temporary_settings(home=str(tmp_path / mode), store_writer=mode):
        store = get_store(get_settings())
        assert isinstance(store, EmbeddedStore)
        doubles(10)
        store.flush()
        assert store._writer is None  # a small flow: no process started for it
        doubles(_WRITER_AFTER // 4)  # a task run is four or more events
        store.flush()
        assert (store._writer is not None) is starts
        runs = store.read_flow_runs()
        assert sum(len(store.read_task_runs(run.id)) for run in runs) == 10 + _WRITER_AFTER // 4
        close_stores()


def test_auto_starts_the_writer_from_the_thread_that_records_the_500th_event(
    tmp_path: Path,
) -> None:
    # Not left to the flusher, which the recording thread would keep waiting for the
    # interpreter lock for up to 5 ms while the writer's backlog grows.
    from riverrun.store.embedded import _WRITER_AFTER

    close_stores()
    settings = {"home": str(tmp_path / "auto"), "store_writer": "auto", "flush_interval": "60"}
    with temporary_settings(**settings):
        store = get_store(get_settings())
        assert isinstance(store, EmbeddedStore)
        for index in range(_WRITER_AFTER - 1):
            store.record_log_line(None, None, 20, "test", f"line {index}", time.time())
        assert store._writer is None
        store.record_log_line(None, None, 20, "test", "the 500th", time.time())
        assert store._writer is not None  # at once, in this thread
        close_stores()


def test_the_recording_thread_hands_the_queue_to_a_writer_that_has_become_ready(
    tmp_path: Path,
) -> None:
    # Not only the flusher, which a busy recording thread keeps waiting for the
    # interpreter lock while the writer idles: the thread recording events looks too,
    # whenever the queue reaches a multiple of 512.
    import select

    close_stores()
    settings = {"home": str(tmp_path / "ready"), "store_writer": "process", "flush_interval": "60"}
    with temporary_settings(**settings):
        store = get_store(get_settings())
        assert isinstance(store, EmbeddedStore)
        with store._flush_lock:
            store._start_writer()
        writer = store._writer
        assert writer is not None
        # The writer says it is ready; nobody has read it yet.
        assert select.select([writer._acks], [], [], 30)[0], "the writer never answered"
        for index in range(511):
            store.record_log_line(None, None, 20, "test", f"line {index}", time.time())
        assert not writer.ready and len(store._queue) == 511
        store.record_log_line(None, None, 20, "test", "line 511", time.time())
        assert writer.ready and len(store._queue) == 0  # handed over, in this thread
        store.flush()
        with sqlite3.connect(get_settings().home / "riverrun.db") as connection:
            (count,) = connection.execute("SELECT count(*) FROM logs").fetchone()
        assert count == 512
        close_stores()


class _Label(str):
    """A str subclass: ``marshal`` refuses it, so its batch goes to the writer with its
    plain value (the writer could not unpickle it: it does not import riverrun's
    ``__init__``, which this module's imports need)."""


def test_values_marshal_refuses_still_reach_the_database(writer_store: EmbeddedStore) -> None:
    doubles(3)
    _wait_until_ready(writer_store)

    @task(task_run_name=_Label("labelled"), tags=[_Label("subclassed-tag")])
    def labelled() -> str:
        get_run_logger().info(_Label("a line of a str subclass"))
        return "done"

    @flow
    def labels() -> str:
        return labelled()

    assert labels() == "done"
    assert writer_store._writer is not None  # still the writer that committed it
    run = next(r for r in writer_store.read_flow_runs() if r.flow_name == "labels")
    (task_run,) = writer_store.read_task_runs(run.id)
    assert task_run.name == "labelled"
    assert task_run.tags == ["subclassed-tag"]
    assert task_run.state is not None and task_run.state.is_completed()
    assert "a line of a str subclass" in [log.message for log in writer_store.read_logs(run.id)]


def test_a_batch_committed_but_not_confirmed_before_the_writer_died_is_not_written_again(
    writer_store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    doubles(3)
    writer_pid = _wait_until_ready(writer_store)
    writer = writer_store._writer
    assert writer is not None
    # From here on this process hears no confirmation, as when the writer dies between
    # its COMMIT and its answer.
    monkeypatch.setattr(writer, "_answer", lambda seq, text: None)
    database = writer_store._db.path  # type: ignore[attr-defined]

    def committed_mark() -> int | None:
        with sqlite3.connect(database) as connection:
            row = connection.execute(
                'SELECT "seq" FROM "writer_marks" WHERE "writer" = ?', (writer.key,)
            ).fetchone()
        return None if row is None else row[0]

    @flow
    def unconfirmed() -> int:
        total = sum(double(i) for i in range(40))
        writer_store._drain()  # hand the batch over
        deadline = time.monotonic() + 60
        while committed_mark() is None:
            assert time.monotonic() < deadline, "the writer never committed the batch"
            time.sleep(0.01)
        os.kill(writer_pid, signal.SIGKILL)
        os.waitpid(writer_pid, 0)
        return total

    assert unconfirmed() == 2 * sum(range(40))
    assert writer_store._writer is None  # this process writes from now on
    run = next(r for r in writer_store.read_flow_runs() if r.flow_name == "unconfirmed")
    task_runs = writer_store.read_task_runs(run.id)
    assert len(task_runs) == 40
    for task_run in task_runs:
        assert [s.name for s in writer_store.read_states(task_run.id)] == [
            "Pending",
            "Running",
            "Completed",
        ]
    messages = [log.message for log in writer_store.read_logs(run.id)]
    assert sorted(m for m in messages if m.startswith("doubling ")) == sorted(
        f"doubling {i}" for i in range(40)
    )
    assert not [r for r in caplog.records if "Dropped a run-history event" in r.getMessage()]
    assert committed_mark() is None  # read and removed when the writer was found gone


def test_what_is_recorded_while_a_writer_starts_is_kept_for_it(tmp_path: Path) -> None:
    """In auto mode the flusher starts a writer once enough is recorded, and hands it
    what was recorded meanwhile instead of writing it here (which would take the
    interpreter lock from the runs while the writer's interpreter starts)."""
    from riverrun.store.embedded import _WRITER_AFTER
    from riverrun.store.protocol import LogEntry

    close_stores()
    # No flush on the interval meanwhile: only the count of recorded events wakes it.
    settings = {"home": str(tmp_path / "auto"), "store_writer": "auto", "flush_interval": "60"}
    with temporary_settings(**settings):
        store = get_store(get_settings())
        assert isinstance(store, EmbeddedStore)
        now = datetime.now(UTC)
        lines = 2 * _WRITER_AFTER
        for number in range(lines):
            store.record_log(LogEntry(None, None, 20, "test", f"line {number}", now))
        deadline = time.monotonic() + 60
        while store._writer is None or not store._writer.ready:
            assert time.monotonic() < deadline, "no writer process was started and ready"
            time.sleep(0.01)
        store.flush()
        assert store._written == 0  # every line went through the writer
        with sqlite3.connect(store._db.path) as connection:  # type: ignore[attr-defined]
            (count,) = connection.execute(
                "SELECT count(*) FROM logs WHERE logger = 'test'"
            ).fetchone()
        assert count == lines
        close_stores()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_writer_process_records_on_either_database(tmp_path: Path, backend: str) -> None:
    """The writer (and its progress marks) on SQLite and on PostgreSQL."""
    close_stores()
    with (
        empty_database(backend, tmp_path) as url,
        temporary_settings(home=str(tmp_path / "home"), database_url=url, store_writer="process"),
    ):
        store = get_store(get_settings())
        assert isinstance(store, EmbeddedStore)
        doubles(3)
        _wait_until_ready(store)
        assert doubles(200) == 2 * sum(range(200))
        assert store._writer is not None  # the writer committed it all
        run = next(r for r in store.read_flow_runs() if r.parameters == {"n": 200})
        task_runs = store.read_task_runs(run.id)
        assert len(task_runs) == 200
        assert all(t.state is not None and t.state.is_completed() for t in task_runs)
        states = store.read_states(task_runs[0].id)
        assert [s.name for s in states] == ["Pending", "Running", "Completed"]
        close_stores()
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                marks = connection.execute(text("SELECT count(*) FROM writer_marks")).scalar()
        finally:
            engine.dispose()
        assert marks == 0  # removed once every batch was confirmed


def test_values_of_subclasses_are_sent_as_their_plain_values() -> None:
    import enum
    import marshal

    from riverrun.store.writer import _plain

    class Level(enum.IntEnum):
        INFO = 20

    class Ratio(float):
        pass

    event = (2, _Label("flow"), [Level.INFO, Ratio(0.5)], {"k": _Label("v")}, None, True, b"x")
    plain = _plain(event)
    assert plain == event
    assert [type(value) for value in (plain[1], *plain[2], plain[3]["k"])] == [
        str,
        int,
        float,
        str,
    ]
    assert marshal.loads(marshal.dumps(plain)) == event
    with pytest.raises(ValueError):
        marshal.dumps(event)


@pytest.mark.postgres
def test_a_writer_keeps_what_the_database_cannot_take_until_it_can(tmp_path: Path) -> None:
    # The database goes away in the middle of a flow (connections refused, open ones
    # cut): the flow still completes, its end reports that the history waits, and once
    # the database is back every event is committed, once.
    from sqlalchemy import make_url

    from tests.postgres import fresh_postgres_database

    close_stores()
    with fresh_postgres_database() as url:
        name = make_url(url).database
        admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")

        def allow_connections(allowed: bool) -> None:
            _allow_connections(admin, name, allowed)

        @task
        def outage() -> None:
            allow_connections(False)

        @flow
        def through_an_outage() -> int:
            before = sum(double(i) for i in range(100))
            outage()
            return before + sum(double(i) for i in range(100, 200))

        settings = {"home": str(tmp_path / "home"), "database_url": url}
        try:
            with temporary_settings(**settings, store_writer="process"):
                store = get_store(get_settings())
                assert isinstance(store, EmbeddedStore)
                doubles(3)
                writer_pid = _wait_until_ready(store)
                assert through_an_outage() == 2 * sum(range(200))
                with pytest.raises(StoreUnavailableError):
                    store.flush()  # the writer holds the events and says why
                allow_connections(True)
                deadline = time.monotonic() + 60
                while True:  # the writer tries again, every 2 s at most
                    try:
                        store.flush()
                        break
                    except StoreUnavailableError:
                        assert time.monotonic() < deadline, "the writer never committed"
                        time.sleep(0.1)
                assert store._writer is not None and store._writer.pid == writer_pid
                [run] = store.read_flow_runs(flow_name="through-an-outage")
                assert run.state is not None and run.state.is_completed()
                task_runs = store.read_task_runs(run.id)
                assert len(task_runs) == 201
                for task_run in task_runs:
                    states = [s.name for s in store.read_states(task_run.id)]
                    assert states == ["Pending", "Running", "Completed"], task_run.name
                lines = [log.message for log in store.read_logs(run.id)]
                assert sorted(m for m in lines if m.startswith("doubling")) == sorted(
                    f"doubling {i}" for i in range(200)
                )
                close_stores()
        finally:
            allow_connections(True)
            admin.dispose()


_GIVE_UP_SCRIPT = textwrap.dedent(
    """
    import sys, time

    from riverrun import flow, task
    from riverrun.store import get_store

    @task
    def step(i: int) -> int:
        return i

    @task
    def outage() -> None:
        print("cut the database", flush=True)
        sys.stdin.readline()  # the test has cut it

    @flow(name="outlived")
    def outlived() -> None:
        store = get_store()
        step(-1)
        while store._writer is None or not store._writer.ready:
            store.flush()
            time.sleep(0.02)
        outage()
        for i in range(40):
            step(i)
        store._drain()  # handed to the writer, which cannot commit them
        print("handed", store._writer.pid, flush=True)
        time.sleep(60)

    outlived()
    """
)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_writer_whose_parent_is_gone_gives_up_on_an_unavailable_database_and_says_so(
    tmp_path: Path,
) -> None:
    # The writer of a killed process keeps trying the database for
    # RIVERRUN_WRITER_GIVE_UP_AFTER seconds, then reports what it could not commit on
    # its standard error (its parent's, inherited) and exits, releasing its lock.
    from sqlalchemy import make_url

    from tests.postgres import fresh_postgres_database

    script = tmp_path / "outlived.py"
    script.write_text(_GIVE_UP_SCRIPT)
    home = tmp_path / "home"
    with fresh_postgres_database() as url:
        name = make_url(url).database
        admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERRUN_")}
        env.update(RIVERRUN_HOME=str(home), RIVERRUN_DATABASE_URL=url)
        env.update(RIVERRUN_STORE_WRITER="process", RIVERRUN_WRITER_GIVE_UP_AFTER="1")
        env.update(RIVERRUN_FLUSH_INTERVAL="30", RIVERRUN_LOGGING_LEVEL="WARNING")
        stderr = (tmp_path / "stderr.txt").open("w+")
        child = subprocess.Popen(
            [sys.executable, str(script)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            line = child.stdout.readline()
            assert line == "cut the database\n", line + stderr.read()
            _allow_connections(admin, name, False)
            child.stdin.write("go\n")
            child.stdin.flush()
            line = child.stdout.readline()
            assert line.startswith("handed"), line
            writer_pid = int(line.split()[1])
            child.kill()
            child.wait()
            assert _exits(writer_pid, within=30), "the writer never gave up"
            stderr.seek(0)
            said = stderr.read()
            assert "riverrun writer: the process that ran the flows is gone" in said, said
            counted = re.search(r"; (\d+) run-history event\(s\) were not recorded", said)
            assert counted is not None, said
            assert int(counted[1]) >= 40 * 3, said  # each step: its run, Running, Completed
            lock = writers_folder(home) / f"{socket.gethostname()}-{child.pid}.lock"
            assert not lock.exists()
        finally:
            child.kill()
            child.wait()
            child.stdin.close()
            child.stdout.close()
            stderr.close()
            _allow_connections(admin, name, True)
            admin.dispose()


def _allow_connections(admin: Engine, name: str | None, allowed: bool) -> None:
    """Let the PostgreSQL database ``name`` take connections again, or refuse them and
    cut the open ones (an outage, as clients see it)."""
    assert name, "a database URL without a database name"
    with admin.connect() as connection:
        connection.execute(
            text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        )
        if not allowed:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
