"""The thread pool behind ThreadPoolTaskRunner (riverrun.task_runners.pool)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from riverrun.task_runners.pool import ThreadPool


def test_results_and_errors_land_in_the_futures() -> None:
    pool = ThreadPool(2, thread_name_prefix="test-pool")

    def fail(error: BaseException) -> None:
        raise error

    try:
        assert pool.submit(pow, 2, 10).result(timeout=10) == 1024
        assert isinstance(pool.submit(fail, ValueError("no")).exception(timeout=10), ValueError)
        # A BaseException fails the call, not the worker: the pool keeps working.
        interrupted = pool.submit(fail, KeyboardInterrupt()).exception(timeout=10)
        assert isinstance(interrupted, KeyboardInterrupt)
        assert pool.submit(lambda: threading.current_thread().name).result(timeout=10) in (
            "test-pool_0",
            "test-pool_1",
        )
    finally:
        pool.shutdown()


def test_an_idle_worker_is_reused_before_a_thread_is_started() -> None:
    pool = ThreadPool(8, thread_name_prefix="test-pool")
    try:
        names = {
            pool.submit(lambda: threading.current_thread().name).result(timeout=10)
            for _ in range(20)
        }
        assert names == {"test-pool_0"}
    finally:
        pool.shutdown()


def test_at_most_max_workers_threads_and_queued_calls_wait_for_one() -> None:
    pool = ThreadPool(3, thread_name_prefix="test-pool")
    release = threading.Event()
    running: list[int] = []
    lock = threading.Lock()

    def block(i: int) -> int:
        with lock:
            running.append(i)
        release.wait(10)
        return i

    try:
        futures = [pool.submit(block, i) for i in range(6)]
        for _ in range(200):
            with lock:
                if len(running) == 3:
                    break
            release.wait(0.01)
        with lock:
            assert sorted(running) == [0, 1, 2]
        assert pool.qsize() == 3
        release.set()
        assert [future.result(timeout=10) for future in futures] == list(range(6))
        assert len({t.name for t in threading.enumerate() if t.name.startswith("test-pool")}) <= 3
    finally:
        release.set()
        pool.shutdown()


def test_shutdown_runs_the_queued_calls_then_refuses_new_ones() -> None:
    pool = ThreadPool(1, thread_name_prefix="test-pool")
    gate = threading.Event()
    first = pool.submit(gate.wait, 10)
    queued = [pool.submit(pow, 3, i) for i in range(3)]
    stopper = threading.Thread(target=pool.shutdown)
    stopper.start()
    gate.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert first.result() is True
    assert [future.result() for future in queued] == [1, 3, 9]
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(pow, 2, 2)


def test_calls_still_queued_at_exit_run_before_the_interpreter_ends() -> None:
    script = textwrap.dedent(
        """
        import time
        from riverrun.task_runners.pool import ThreadPool

        pool = ThreadPool(1, thread_name_prefix="exit-pool")

        def slow(text):
            time.sleep(0.2)
            print(text, flush=True)

        pool.submit(slow, "first")
        pool.submit(slow, "second")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["first", "second"]
