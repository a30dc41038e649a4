"""Dependencies inferred from futures in arguments, wait_for, allow_failure, and map."""

from __future__ import annotations

import time
from collections import namedtuple
from dataclasses import dataclass
from typing import Any

import pytest

from riverrun import allow_failure, flow, task, unmapped
from riverrun.exceptions import UpstreamTaskError
from riverrun.futures import RiverrunFutureList
from riverrun.store import RunStore


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(values: Any) -> int:
    return sum(values)


@task
def explode(message: str) -> int:
    raise ValueError(message)


@dataclass(frozen=True)
class Pair:
    left: Any
    right: Any


Point = namedtuple("Point", ["x", "y"])


def test_a_future_argument_passes_its_result(store: RunStore) -> None:
    @task
    def unpack(pair: Pair, point: Any, mapping: dict[str, Any], items: tuple[Any, ...]) -> int:
        return int(pair.left + pair.right + point.x + point.y + mapping["k"] + sum(items))

    @flow
    def pipeline() -> tuple[int, int]:
        one = add.submit(0, 1)
        two = add.submit(one, one)  # 2
        nested = unpack.submit(Pair(one, two), Point(one, 10), {"k": two}, (one, two, 3))
        return two.result(), nested.result()

    assert pipeline() == (2, 1 + 2 + 1 + 10 + 2 + 1 + 2 + 3)
    [run] = store.read_flow_runs()
    runs = {r.id: r for r in store.read_task_runs(run.id)}
    by_upstreams = sorted(len(r.upstream_task_run_ids) for r in runs.values())
    assert by_upstreams == [0, 1, 2]
    [nested_run] = [r for r in runs.values() if r.task_name == "unpack"]
    assert {runs[i].task_name for i in nested_run.upstream_task_run_ids} == {"add"}


def test_downstream_starts_only_after_its_upstream() -> None:
    events: list[str] = []

    @task
    def slow_source() -> int:
        time.sleep(0.3)
        events.append("source")
        return 5

    @task
    def sink(value: int) -> int:
        events.append("sink")
        return value * 2

    @flow
    def pipeline() -> int:
        return sink.submit(slow_source.submit()).result()

    assert pipeline() == 10
    assert events == ["source", "sink"]


def test_wait_for_orders_without_passing_data(store: RunStore) -> None:
    events: list[str] = []

    @task
    def write() -> None:
        time.sleep(0.2)
        events.append("write")

    @task
    def read() -> str:
        events.append("read")
        return "read"

    @flow
    def pipeline() -> str:
        written = write.submit()
        return read.submit(wait_for=[written]).result()

    assert pipeline() == "read"
    assert events == ["write", "read"]
    [run] = store.read_flow_runs()
    [reader] = [r for r in store.read_task_runs(run.id) if r.task_name == "read"]
    [writer] = [r for r in store.read_task_runs(run.id) if r.task_name == "write"]
    assert reader.upstream_task_run_ids == [writer.id]


def test_upstream_failure_stops_downstream(store: RunStore) -> None:
    calls: list[int] = []

    @task
    def after(value: int) -> int:
        calls.append(value)
        return value

    @flow
    def pipeline() -> None:
        failed = explode.submit("upstream broke")
        downstream = after.submit(failed)
        also = after.submit(1, wait_for=[failed])
        for future in (downstream, also):
            future.wait()
            assert future.state.name == "NotReady"
            with pytest.raises(UpstreamTaskError, match="explode"):
                future.result()

    state = pipeline(return_state=True)
    assert calls == []
    assert state.is_failed()
    # The upstream failure was never looked at: it fails the flow.
    assert state.message == "1/3 states failed."
    [run] = store.read_flow_runs()
    names = sorted(r.state.name for r in store.read_task_runs(run.id) if r.state)
    assert names == ["Failed", "NotReady", "NotReady"]


def test_allow_failure_runs_downstream_with_the_exception() -> None:
    @task
    def cleanup(outcome: Any) -> str:
        return f"cleaned after {outcome!r}"

    @flow
    def pipeline() -> str:
        failed = explode.submit("boom")
        return cleanup.submit(allow_failure(failed)).result()

    state = pipeline(return_state=True)
    assert state.is_failed()  # the failure itself was still never looked at

    @flow
    def handled() -> str:
        failed = explode.submit("boom")
        result = cleanup.submit(allow_failure(failed)).result()
        failed.wait()
        assert failed.state.is_failed()
        return result

    assert handled() == "cleaned after ValueError('boom')"


def test_a_direct_call_waits_for_future_arguments() -> None:
    @flow
    def pipeline() -> int:
        first = add.submit(1, 2)
        return add(first, 10)  # type: ignore[call-overload,no-any-return]

    assert pipeline() == 13


def test_a_direct_call_with_a_failed_upstream_raises() -> None:
    @flow
    def pipeline() -> None:
        add(explode.submit("nope"), 1)  # type: ignore[call-overload]

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, UpstreamTaskError)


def test_wait_for_rejects_what_is_not_a_future() -> None:
    @flow
    def pipeline() -> None:
        add.submit(1, 2, wait_for=[42])

    with pytest.raises(TypeError, match="wait_for takes futures"):
        pipeline()


def test_map_zips_iterables_and_passes_unmapped_whole(store: RunStore) -> None:
    @task
    def combine(x: int, y: int, scale: list[int]) -> int:
        return (x + y) * len(scale)

    @flow
    def pipeline() -> list[int]:
        futures = combine.map([1, 2, 3], (10, 20, 30), scale=unmapped([0, 0]))
        assert isinstance(futures, RiverrunFutureList)
        futures.wait()
        return futures.result()

    assert pipeline() == [22, 44, 66]
    [run] = store.read_flow_runs()
    assert len(store.read_task_runs(run.id)) == 3


def test_map_over_futures_chains_runs() -> None:
    @flow
    def pipeline() -> int:
        doubled = add.map([1, 2, 3], [1, 2, 3])
        shifted = add.map(doubled, unmapped(100))
        return total.submit(shifted).result()

    assert pipeline() == 2 + 4 + 6 + 300


def test_map_treats_strings_and_futures_as_constants() -> None:
    @task
    def label(prefix: str, n: int) -> str:
        return f"{prefix}{n}"

    @flow
    def pipeline() -> list[str]:
        return label.map("n", [1, 2]).result()

    assert pipeline() == ["n1", "n2"]


def test_map_errors_name_the_problem() -> None:
    @flow
    def mismatched() -> None:
        add.map([1, 2, 3], [1, 2])

    with pytest.raises(ValueError, match="x has 3, y has 2"):
        mismatched()

    @flow
    def nothing_to_map() -> None:
        add.map(1, 2)

    with pytest.raises(TypeError, match="at least one iterable"):
        nothing_to_map()


def test_map_result_raises_the_first_failure() -> None:
    @task
    def check(n: int) -> int:
        if n == 2:
            raise ValueError("two is bad")
        return n

    @flow
    def pipeline() -> list[Any]:
        futures = check.map([1, 2, 3])
        with pytest.raises(ValueError, match="two is bad"):
            futures.result()
        return futures.result(raise_on_failure=False)

    values = pipeline()
    assert values[0] == 1 and values[2] == 3
    assert isinstance(values[1], ValueError)
