"""The store's concurrency-limit methods, written once and run on every store: embedded
on SQLite and PostgreSQL, and the HTTP store through a real ``riverrun server start``
over SQLite and over PostgreSQL.

These drive the store one attempt at a time (``acquire_concurrency_slots``), the way
the slot driver does; waiting and renewing are tested in ``tests/concurrency``, and
through the server in ``tests/server/test_concurrency_http.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverrun.exceptions import ConcurrencyLimitExistsError, ConcurrencyLimitNotFoundError
from riverrun.store import RunStore
from riverrun.store.protocol import ConcurrencyHolder, SlotGrant, SlotRequest
from riverrun.testing import riverrun_test_harness
from tests.postgres import BACKENDS, empty_database, fresh_postgres_database
from tests.serverprocess import ServerProcess, running_server

HOLDER = ConcurrencyHolder(flow_run_id="f-1", task_run_id="t-1", hostname="here", pid=42)


@pytest.fixture(scope="module")
def postgres_api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server over a fresh PostgreSQL database, for this module's tests."""
    with (
        fresh_postgres_database() as url,
        running_server(tmp_path_factory.mktemp("pg-api-server"), url) as server,
    ):
        yield server


def emptied(server: ServerProcess) -> str:
    """``server``'s API URL, its database emptied."""
    from sqlalchemy import create_engine

    from riverrun.db.tables import metadata

    engine = create_engine(server.database_url)
    try:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
    finally:
        engine.dispose()
    return server.api_url


@pytest.fixture(
    params=[
        *BACKENDS,
        pytest.param("http", id="http"),
        pytest.param("http-postgres", id="http-postgres", marks=pytest.mark.postgres),
    ]
)
def run_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    home = tmp_path / "limits"
    if request.param == "http":
        api_url: str = request.getfixturevalue("empty_api_server")
    elif request.param == "http-postgres":
        api_url = emptied(request.getfixturevalue("postgres_api_server"))
    else:
        with (
            empty_database(request.param, tmp_path) as url,
            riverrun_test_harness(home, database_url=url) as store,
        ):
            yield store
        return
    with riverrun_test_harness(home, api_url=api_url) as store:
        yield store


def ask(
    store: RunStore,
    *names: str,
    occupy: int = 1,
    hold: bool = True,
    ticket: int | None = None,
    lease_seconds: float = 30.0,
    create_if_missing: bool = False,
) -> SlotGrant:
    return store.acquire_concurrency_slots(
        SlotRequest(
            names=names,
            occupy=occupy,
            hold=hold,
            lease_seconds=lease_seconds,
            holder=HOLDER,
            ticket=ticket,
            create_if_missing=create_if_missing,
        )
    )


def refused(store: RunStore, name: str) -> bool:
    """Whether one slot of ``name`` is refused now (without staying in line)."""
    grant = ask(store, name)
    if grant.granted:
        return False
    assert grant.ticket is not None
    store.leave_concurrency_line(grant.ticket, (name,))
    return True


def test_create_read_update_reset_delete(run_store: RunStore) -> None:
    created = run_store.create_concurrency_limit("db", 3, slot_decay_per_second=0.5)
    assert (created.name, created.limit, created.slot_decay_per_second) == ("db", 3, 0.5)
    assert created.active_slots == 0 and created.leases == [] and created.waiting == 0
    with pytest.raises(ConcurrencyLimitExistsError, match="'db' exists already"):
        run_store.create_concurrency_limit("db", 1)

    grant = ask(run_store, "db", occupy=2)
    assert grant.granted and grant.lease_id is not None
    limit = run_store.read_concurrency_limit("db")
    assert limit.active_slots == 2
    [lease] = limit.leases
    assert (lease.id, lease.slots, lease.holder) == (grant.lease_id, 2, HOLDER)

    updated = run_store.update_concurrency_limit("db", limit=5)
    assert (updated.limit, updated.slot_decay_per_second, updated.active_slots) == (5, 0.5, 2)
    assert run_store.update_concurrency_limit("db", slot_decay_per_second=0).limit == 5

    assert run_store.reset_concurrency_limit("db").active_slots == 0
    assert run_store.read_concurrency_limit("db").leases == []

    run_store.create_concurrency_limit("api", 1)
    assert [limit.name for limit in run_store.read_concurrency_limits()] == ["api", "db"]
    assert run_store.concurrency_limit_names() == {"api", "db"}
    run_store.delete_concurrency_limit("db")
    assert run_store.concurrency_limit_names() == {"api"}
    for action in (
        lambda: run_store.read_concurrency_limit("db"),
        lambda: run_store.delete_concurrency_limit("db"),
        lambda: run_store.reset_concurrency_limit("db"),
        lambda: run_store.update_concurrency_limit("db", limit=1),
    ):
        with pytest.raises(ConcurrencyLimitNotFoundError, match="concurrency-limit create db"):
            action()


@pytest.mark.parametrize(
    ("name", "limit", "decay", "problem"),
    [
        ("", 1, 0.0, "non-empty"),
        (" padded", 1, 0.0, "surrounding blanks"),
        ("x" * 256, 1, 0.0, "longer than 255"),
        ("ok", -1, 0.0, "whole number >= 0"),
        ("ok", 1, -2.0, "finite number >= 0"),
        ("ok", 1, float("inf"), "finite number >= 0"),
    ],
)
def test_bad_limits_are_refused_naming_the_problem(
    run_store: RunStore, name: str, limit: int, decay: float, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        run_store.create_concurrency_limit(name, limit, slot_decay_per_second=decay)
    assert run_store.read_concurrency_limits() == []


def test_slots_are_granted_up_to_the_limit_and_freed_by_release(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("db", 2)
    first, second = ask(run_store, "db"), ask(run_store, "db")
    assert first.granted and second.granted
    third = ask(run_store, "db")
    assert not third.granted and third.ticket is not None and third.retry_after is None
    assert run_store.read_concurrency_limit("db").waiting == 1
    assert first.lease_id is not None
    run_store.release_concurrency_lease(first.lease_id)
    again = ask(run_store, "db", ticket=third.ticket)
    assert again.granted
    limit = run_store.read_concurrency_limit("db")
    assert (limit.active_slots, limit.waiting) == (2, 0)


def test_waiters_are_served_first_come_first_served(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("db", 1)
    holder = ask(run_store, "db")
    early = ask(run_store, "db")
    late = ask(run_store, "db")
    assert early.ticket is not None and late.ticket is not None
    assert early.ticket < late.ticket
    assert holder.lease_id is not None
    run_store.release_concurrency_lease(holder.lease_id)
    # A free slot, but someone is ahead: the late waiter and a newcomer must wait.
    assert not ask(run_store, "db", ticket=late.ticket).granted
    assert not ask(run_store, "db").granted
    assert ask(run_store, "db", ticket=early.ticket).granted


def test_leaving_the_line_lets_the_next_waiter_go(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("db", 1)
    holder = ask(run_store, "db")
    early, late = ask(run_store, "db"), ask(run_store, "db")
    assert holder.lease_id is not None and early.ticket is not None
    run_store.release_concurrency_lease(holder.lease_id)
    run_store.leave_concurrency_line(early.ticket, ("db",))
    assert ask(run_store, "db", ticket=late.ticket).granted


def test_several_limits_are_taken_together_or_not_at_all(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("a", 1)
    run_store.create_concurrency_limit("b", 1)
    b_holder = ask(run_store, "b")
    both = ask(run_store, "a", "b")
    assert not both.granted
    assert run_store.read_concurrency_limit("a").active_slots == 0
    assert b_holder.lease_id is not None
    run_store.release_concurrency_lease(b_holder.lease_id)
    granted = ask(run_store, "a", "b", ticket=both.ticket)
    assert granted.granted
    assert [limit.active_slots for limit in run_store.read_concurrency_limits()] == [1, 1]
    assert granted.lease_id is not None
    run_store.release_concurrency_lease(granted.lease_id)
    assert [limit.active_slots for limit in run_store.read_concurrency_limits()] == [0, 0]


def test_an_expired_lease_frees_its_slots_and_renewal_keeps_one(run_store: RunStore) -> None:
    # Leases long enough that a loaded machine cannot expire them between two calls;
    # the loop renews one of them until the other has run out.
    lease = 1.5
    run_store.create_concurrency_limit("db", 2)
    dying = ask(run_store, "db", lease_seconds=lease)
    kept = ask(run_store, "db", lease_seconds=lease)
    assert dying.lease_id is not None and kept.lease_id is not None
    assert refused(run_store, "db")
    deadline = time.monotonic() + 30
    while True:
        assert run_store.renew_concurrency_leases([kept.lease_id], lease) == []
        if not refused(run_store, "db"):  # took the freed slot
            break
        assert time.monotonic() < deadline, "the unrenewed lease never expired"
        time.sleep(0.05)
    # The unrenewed lease expired; the renewed one is still held.
    assert run_store.renew_concurrency_leases([kept.lease_id], 30) == []
    assert refused(run_store, "db")
    held = {lease.id for lease in run_store.read_concurrency_limit("db").leases}
    assert kept.lease_id in held and dying.lease_id not in held
    assert run_store.renew_concurrency_leases([dying.lease_id, kept.lease_id], 5) == [
        dying.lease_id
    ]


def test_missing_limits_raise_or_are_created_on_demand(run_store: RunStore) -> None:
    with pytest.raises(ConcurrencyLimitNotFoundError, match="'nope'") as caught:
        ask(run_store, "nope")
    assert caught.value.name == "nope"
    assert ask(run_store, "made", occupy=2, create_if_missing=True).granted
    made = run_store.read_concurrency_limit("made")
    assert (made.limit, made.active_slots) == (2, 2)
    assert "made" in run_store.concurrency_limit_names()


def test_requests_that_can_never_be_granted_are_refused(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("db", 2)
    with pytest.raises(ValueError, match="cannot occupy 3 slots of concurrency limit 'db'"):
        ask(run_store, "db", occupy=3)
    with pytest.raises(ValueError, match="--slot-decay-per-second"):
        ask(run_store, "db", hold=False)
    with pytest.raises(ValueError, match="occupy must be a whole number >= 1"):
        ask(run_store, "db", occupy=0)
    assert run_store.read_concurrency_limit("db").waiting == 0


def test_a_limit_of_zero_pauses_until_raised(run_store: RunStore) -> None:
    run_store.create_concurrency_limit("paused", 0)
    waiting = ask(run_store, "paused")
    assert not waiting.granted and waiting.retry_after is None
    run_store.update_concurrency_limit("paused", limit=1)
    assert ask(run_store, "paused", ticket=waiting.ticket).granted


def test_rate_slots_decay_like_a_token_bucket(run_store: RunStore) -> None:
    # One slot a second: slow enough that a loaded machine still asks three times
    # before a whole slot has decayed.
    run_store.create_concurrency_limit("api", 2, slot_decay_per_second=1)
    started = time.monotonic()
    assert ask(run_store, "api", hold=False).granted
    second = ask(run_store, "api", hold=False)
    assert second.granted and second.lease_id is None  # rate slots are not leases
    third = ask(run_store, "api", hold=False)
    assert not third.granted
    # The next slot frees when the bucket has decayed one slot: within a second.
    assert third.retry_after is not None and 0 < third.retry_after <= 1
    active = run_store.read_concurrency_limit("api").active_slots
    # Two slots taken since ``started``, decaying since (the bound allows for the time
    # the calls took).
    assert max(0.0, 2 - (time.monotonic() - started)) <= active <= 2
    time.sleep(third.retry_after)
    assert ask(run_store, "api", hold=False, ticket=third.ticket).granted
