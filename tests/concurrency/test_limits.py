"""``concurrency`` and ``rate_limit`` under real contention: threads, processes,
``kill -9``, on SQLite and PostgreSQL.

Caps are checked by counting holders (under a file lock) inside the guarded block,
never by timing. Latencies are measured and printed; their bounds are generous, for a
loaded 2-core machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverrun.concurrency import asyncio as async_concurrency
from riverrun.concurrency.sync import concurrency, rate_limit
from riverrun.exceptions import AcquireConcurrencySlotTimeoutError, ConcurrencyLimitNotFoundError
from riverrun.settings import temporary_settings
from riverrun.store import RunStore
from tests.concurrency.holder import count

HOLDER = Path(__file__).with_name("holder.py")
LEASE_SECONDS = 1.5


def counter_file(tmp_path: Path) -> Path:
    counter = tmp_path / "counter"
    counter.write_text("0 0")
    return counter


def highest(counter: Path) -> int:
    current, top = (int(part) for part in counter.read_text().split())
    assert current == 0, "a holder never left"
    return top


@pytest.fixture
def env(database_url: str, tmp_path: Path, run_store: RunStore) -> dict[str, str]:
    """The environment of a holder process: this test's database, short leases."""
    return {
        **os.environ,
        "RIVERRUN_HOME": str(tmp_path / "home"),
        "RIVERRUN_DATABASE_URL": database_url,
        "RIVERRUN_CONCURRENCY_LEASE_SECONDS": str(LEASE_SECONDS),
        "PYTHONPATH": str(HOLDER.parents[2]),
    }


def holder(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HOLDER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 90) -> None:
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err


def wait_until(condition: object, timeout: float = 30) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_the_cap_holds_under_twenty_threads(run_store: RunStore, tmp_path: Path) -> None:
    run_store.create_concurrency_limit("db", 3)
    counter = counter_file(tmp_path)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                with concurrency("db"):
                    count(counter, 1)
                    time.sleep(0.02)
                    count(counter, -1)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert highest(counter) == 3
    limit = run_store.read_concurrency_limit("db")
    assert (limit.active_slots, limit.leases, limit.waiting) == (0, [], 0)


@pytest.mark.slow
def test_the_cap_holds_under_four_processes(
    run_store: RunStore, env: dict[str, str], tmp_path: Path
) -> None:
    run_store.create_concurrency_limit("db", 2)
    counter = counter_file(tmp_path)
    processes = [holder(env, "cap", "db", str(counter), "6", "0.02") for _ in range(4)]
    for process in processes:
        finish(process)
    assert highest(counter) == 2
    assert run_store.read_concurrency_limit("db").active_slots == 0


@pytest.mark.slow
def test_kill_9_of_a_holder_frees_its_slot_within_the_lease(
    run_store: RunStore, env: dict[str, str], tmp_path: Path
) -> None:
    run_store.create_concurrency_limit("db", 1)
    ready = tmp_path / "ready"
    process = holder(env, "hold", "db", str(ready))
    try:
        wait_until(lambda: ready.exists() or process.poll() is not None)
        assert ready.exists(), process.communicate()[1]
        # Held, and renewed past its first lease period.
        time.sleep(LEASE_SECONDS * 1.2)
        with (
            pytest.raises(AcquireConcurrencySlotTimeoutError, match=r"'db' within 0\.2"),
            concurrency("db", timeout_seconds=0.2),
        ):
            pass
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    killed = time.monotonic()
    with concurrency("db", timeout_seconds=30):
        freed_after = time.monotonic() - killed
    print(f"slot of a kill -9'd holder freed after {freed_after:.2f}s (lease {LEASE_SECONDS}s)")
    assert freed_after < LEASE_SECONDS + 1.5


def test_a_release_wakes_a_waiter_of_this_process_at_once(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("db", 1)
    granted: list[float] = []

    def waiter() -> None:
        with concurrency("db"):
            granted.append(time.perf_counter())

    with concurrency("db"):
        thread = threading.Thread(target=waiter)
        thread.start()
        wait_until(lambda: run_store.read_concurrency_limit("db").waiting == 1)
        time.sleep(0.3)  # long past the first polls: only the release can wake it now
        released = time.perf_counter()
    thread.join(30)
    latency = granted[0] - released
    print(f"in-process wake-up after release: {latency * 1000:.1f} ms")
    assert latency < 0.5


@pytest.mark.slow
def test_a_release_reaches_a_waiter_in_another_process_promptly(
    run_store: RunStore, env: dict[str, str], tmp_path: Path
) -> None:
    run_store.create_concurrency_limit("db", 1)
    out = tmp_path / "granted"
    with concurrency("db"):
        process = holder(env, "wait", "db", str(out))
        wait_until(lambda: run_store.read_concurrency_limit("db").waiting == 1)
        time.sleep(0.5)  # the waiter's polling has backed off to its slowest
        released = time.time()
    finish(process)
    latency = float(out.read_text()) - released
    print(f"cross-process wake-up after release: {latency * 1000:.1f} ms")
    assert latency < 1.0


@pytest.mark.slow
def test_a_rate_limit_of_ten_per_second_gives_thirty_calls_in_three_seconds(
    run_store: RunStore, env: dict[str, str], tmp_path: Path
) -> None:
    # A burst of up to 10 at the start, then 10 per second: counted once the burst is
    # spent, over three seconds, across four processes.
    run_store.create_concurrency_limit("api", 10, slot_decay_per_second=10)
    outs = [tmp_path / f"calls-{index}" for index in range(4)]
    readies = [tmp_path / f"ready-{index}" for index in range(4)]
    go = tmp_path / "go"
    processes = [
        holder(env, "rate", "api", str(out), str(ready), str(go))
        for out, ready in zip(outs, readies, strict=True)
    ]
    wait_until(lambda: all(ready.exists() for ready in readies), timeout=60)
    start = time.time() + 0.2
    (tmp_path / "go.tmp").write_text(f"{start!r} {start + 4.5!r}")
    os.replace(tmp_path / "go.tmp", go)  # whole when it appears
    for process in processes:
        finish(process)
    calls = sorted(float(line) for out in outs for line in out.read_text().split())
    window = [t for t in calls if start + 1.0 <= t < start + 4.0]
    first_second = [t for t in calls if t < start + 1.0]
    print(f"rate limit 10/s: {len(window)} calls in 3 s, {len(first_second)} in the first")
    assert 27 <= len(window) <= 33
    assert len(first_second) <= 10 + 10 + 2


def test_rate_limit_in_one_process_is_spaced(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("api", 1, slot_decay_per_second=20)
    started = time.monotonic()
    for _ in range(6):
        rate_limit("api")
    # The first is free; five more at 20 per second take at least 0.25 s.
    assert time.monotonic() - started >= 0.24


def test_timeouts_missing_limits_and_create_on_demand(run_store: RunStore) -> None:
    with (
        pytest.raises(ConcurrencyLimitNotFoundError, match="concurrency-limit create nope"),
        concurrency("nope"),
    ):
        pass
    with concurrency("made", occupy=2, create_if_missing=True):
        assert run_store.read_concurrency_limit("made").active_slots == 2
    assert run_store.read_concurrency_limit("made").limit == 2
    run_store.create_concurrency_limit("db", 1)
    with concurrency("db"):
        started = time.monotonic()
        with (
            pytest.raises(AcquireConcurrencySlotTimeoutError) as caught,
            concurrency(["db"], timeout_seconds=0.3),
        ):
            pass
        assert time.monotonic() - started >= 0.3
        assert caught.value.names == ("db",) and caught.value.timeout_seconds == 0.3
    limit = run_store.read_concurrency_limit("db")
    assert (limit.active_slots, limit.waiting) == (0, 0)  # the timed-out waiter left


def test_a_slot_is_released_when_the_block_raises(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("db", 1)
    with pytest.raises(RuntimeError), concurrency("db"):
        raise RuntimeError("boom")
    assert run_store.read_concurrency_limit("db").active_slots == 0


def test_held_leases_are_renewed_by_one_thread(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("db", 3)
    with (
        temporary_settings(concurrency_lease_seconds="0.6"),
        concurrency("db"),
        concurrency("db"),
    ):
        time.sleep(1.5)  # more than two lease periods
        leases = run_store.read_concurrency_limit("db").leases
        assert len(leases) == 2
        renewers = [t for t in threading.enumerate() if t.name == "riverrun-concurrency-renew"]
        assert len(renewers) == 1
    assert run_store.read_concurrency_limit("db").leases == []


def test_the_async_twins_wait_without_blocking_the_event_loop(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("db", 1)
    run_store.create_concurrency_limit("api", 1, slot_decay_per_second=50)

    async def scenario() -> tuple[int, int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        async def holder() -> None:
            async with async_concurrency.concurrency("db"):
                await asyncio.sleep(0.4)

        tick_task = asyncio.create_task(ticker())
        first = asyncio.create_task(holder())
        await asyncio.sleep(0.05)
        async with async_concurrency.concurrency("db", timeout_seconds=10):
            waited_ticks = ticks
        await first
        for _ in range(3):
            await async_concurrency.rate_limit("api")
        stop.set()
        await tick_task
        return waited_ticks, ticks

    waited_ticks, _ = asyncio.run(scenario())
    # The loop kept ticking (every 10 ms) while the second block waited ~0.35 s.
    assert waited_ticks >= 10
    assert run_store.read_concurrency_limit("db").active_slots == 0


@pytest.fixture(autouse=True)
def _no_stray_renewals() -> Iterator[None]:
    yield
    from riverrun.engine.slots import _renewer

    assert _renewer._held == {}, "a lease is still being renewed after the test"
