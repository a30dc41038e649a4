"""What only the HTTP store does: the spool, and dropping only the events a server
refuses for their content."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from riverrun.store.protocol import FlowRun, LogEntry
from riverrun.store.spool import Spool
from riverrun.testing import riverrun_test_harness


class Refuse(Exception):
    pass


def test_the_spool_delivers_in_order_and_keeps_what_was_not_taken(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "http://127.0.0.1:1/api")
    other = Spool(tmp_path, "http://127.0.0.1:2/api")
    assert not spool.pending() and spool.path != other.path
    for number in range(4):
        spool.append([{"n": number}])
    with open(spool.path, "ab") as handle:  # a line a crash cut short
        handle.write(b'[{"n": 9\n')
    spool.append([{"n": 4}])

    taken: list[list[dict[str, Any]]] = []

    def take_two(batch: list[dict[str, Any]]) -> None:
        if len(taken) == 2:
            raise Refuse
        taken.append(batch)

    with pytest.raises(Refuse):
        spool.deliver(take_two)
    assert taken == [[{"n": 0}], [{"n": 1}]]
    assert spool.pending()

    rest: list[list[dict[str, Any]]] = []
    assert spool.deliver(rest.append) == 4  # three batches and the broken line
    assert rest == [[{"n": 2}], [{"n": 3}], [{"n": 4}]]
    assert not spool.pending() and spool.deliver(rest.append) == 0


def test_an_event_the_server_refuses_is_dropped_alone(
    empty_api_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    with riverrun_test_harness(tmp_path, api_url=empty_api_server) as store:
        run = FlowRun(id="0b3c1f4e-0000-4000-8000-000000000001", name="r", flow_name="f")
        store.create_flow_run(run)
        for number in range(7):
            logger = "x" * 300 if number == 3 else "riverrun.test"
            store.record_log(LogEntry(run.id, None, 20, logger, f"line {number}", now))
        with caplog.at_level(logging.ERROR, logger="riverrun.store.http"):
            store.flush()
        messages = [entry.message for entry in store.read_logs(run.id)]
    assert messages == [f"line {n}" for n in range(7) if n != 3]
    [refused] = [r for r in caplog.records if "refused a run-history event" in r.getMessage()]
    assert "line 3" in refused.getMessage() and "HTTP 422" in refused.getMessage()
