"""The queries of concurrency limits, written once for SQLite and PostgreSQL.

Every function runs inside a write transaction the caller opened (``engine.begin()``):
on SQLite that is ``BEGIN IMMEDIATE``, which serialises writers across processes; on
PostgreSQL an acquisition locks its limit rows with ``SELECT ... FOR UPDATE`` (in name
order, so two acquisitions of overlapping limits cannot deadlock). The decisions
themselves are ``riverrun.orchestration.concurrency``'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Connection, bindparam, delete, func, insert, select, update

from riverrun.db import statements
from riverrun.db.repository import connection_driver
from riverrun.db.tables import concurrency_leases, concurrency_limits, concurrency_waiters
from riverrun.exceptions import ConcurrencyLimitExistsError, ConcurrencyLimitNotFoundError
from riverrun.orchestration import concurrency as rules
from riverrun.store.protocol import (
    ConcurrencyHolder,
    ConcurrencyLease,
    ConcurrencyLimit,
    SlotGrant,
    SlotRequest,
)

__all__ = [
    "acquire_slots",
    "delete_lease",
    "delete_limit",
    "delete_waiter",
    "insert_limit",
    "renew_leases",
    "reset_limit",
    "select_limit_names",
    "select_limits",
    "update_limit",
]

_limits, _leases, _waiters = concurrency_limits, concurrency_leases, concurrency_waiters

# The statements of an uncontended acquire and release, built once: building a
# statement costs SQLAlchemy more than running it on a local database.
_NAMES: BindParameter[list[str]] = bindparam("names", expanding=True)
_LOCK = select(_limits).where(_limits.c.name.in_(_NAMES)).order_by(_limits.c.name).with_for_update()
_HELD = (
    select(_leases.c.limit_name, func.sum(_leases.c.slots))
    .where(_leases.c.limit_name.in_(_NAMES), _leases.c.expiration >= bindparam("now"))
    .group_by(_leases.c.limit_name)
)
_ANYONE_AHEAD = (
    select(_waiters.c.ticket)
    .where(_waiters.c.limit_name.in_(_NAMES), _waiters.c.expiration >= bindparam("now"))
    .limit(1)
)
_AHEAD_OF_TICKET = (
    select(_waiters.c.ticket)
    .where(
        _waiters.c.limit_name.in_(_NAMES),
        _waiters.c.expiration >= bindparam("now"),
        _waiters.c.ticket < bindparam("ticket"),
    )
    .limit(1)
)
_INSERT_LEASE = insert(_leases)
_DELETE_LEASE = delete(_leases).where(_leases.c.id == bindparam("lease_id"))


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def insert_limit(
    connection: Connection, name: str, limit: int, decay: float, now: datetime
) -> None:
    """Insert a new limit (``ConcurrencyLimitExistsError`` if the name is taken)."""
    rules.validate_name(name)
    rules.validate_limit(limit)
    rules.validate_decay(decay)
    exists = connection.execute(select(_limits.c.name).where(_limits.c.name == name)).first()
    if exists is not None:
        raise ConcurrencyLimitExistsError(name)
    connection.execute(insert(_limits), [_limit_row(name, limit, decay, now)])


def _limit_row(name: str, limit: int, decay: float, now: datetime) -> dict[str, Any]:
    return {
        "name": name,
        "slot_limit": limit,
        "slot_decay_per_second": decay,
        "rate_empty_at": None,
        "created": now,
        "updated": now,
    }


def update_limit(
    connection: Connection,
    name: str,
    now: datetime,
    *,
    limit: int | None = None,
    decay: float | None = None,
) -> None:
    """Change a limit's size or decay (the leases it has are kept)."""
    values: dict[str, Any] = {"updated": now}
    if limit is not None:
        values["slot_limit"] = rules.validate_limit(limit)
    if decay is not None:
        values["slot_decay_per_second"] = rules.validate_decay(decay)
    changed = connection.execute(update(_limits).where(_limits.c.name == name).values(values))
    if changed.rowcount != 1:
        raise ConcurrencyLimitNotFoundError(name)


def delete_limit(connection: Connection, name: str) -> None:
    """Delete a limit with its leases and waiters."""
    removed = connection.execute(delete(_limits).where(_limits.c.name == name))
    if removed.rowcount != 1:
        raise ConcurrencyLimitNotFoundError(name)
    connection.execute(delete(_leases).where(_leases.c.limit_name == name))
    connection.execute(delete(_waiters).where(_waiters.c.limit_name == name))


def reset_limit(connection: Connection, name: str, now: datetime) -> None:
    """Free every slot of a limit: its leases, waiters and rate slots are dropped."""
    changed = connection.execute(
        update(_limits).where(_limits.c.name == name).values(rate_empty_at=None, updated=now)
    )
    if changed.rowcount != 1:
        raise ConcurrencyLimitNotFoundError(name)
    connection.execute(delete(_leases).where(_leases.c.limit_name == name))
    connection.execute(delete(_waiters).where(_waiters.c.limit_name == name))


def select_limit_names(connection: Connection) -> frozenset[str]:
    return statements.select_limit_names(connection_driver(connection))


def select_limits(
    connection: Connection, now: datetime, names: Sequence[str] | None = None
) -> list[ConcurrencyLimit]:
    """Limits by name with their unexpired leases and live waiters (all when
    ``names`` is ``None``)."""
    query = select(_limits).order_by(_limits.c.name)
    lease_query = (
        select(_leases).where(_leases.c.expiration >= now).order_by(_leases.c.created, _leases.c.id)
    )
    waiter_query = (
        select(_waiters.c.limit_name, func.count())
        .where(_waiters.c.expiration >= now)
        .group_by(_waiters.c.limit_name)
    )
    if names is not None:
        query = query.where(_limits.c.name.in_(names))
        lease_query = lease_query.where(_leases.c.limit_name.in_(names))
        waiter_query = waiter_query.where(_waiters.c.limit_name.in_(names))
    leases: dict[str, list[ConcurrencyLease]] = {}
    for row in connection.execute(lease_query):
        holder = ConcurrencyHolder(row.flow_run_id, row.task_run_id, row.hostname, row.pid)
        leases.setdefault(row.limit_name, []).append(
            ConcurrencyLease(
                id=row.id,
                limit_name=row.limit_name,
                slots=row.slots,
                holder=holder,
                expiration=row.expiration,
                created=row.created,
            )
        )
    waiting = {name: count for name, count in connection.execute(waiter_query)}
    result = []
    for row in connection.execute(query):
        held = leases.get(row.name, [])
        usage = _usage(row, sum(lease.slots for lease in held))
        result.append(
            ConcurrencyLimit(
                name=row.name,
                limit=row.slot_limit,
                slot_decay_per_second=row.slot_decay_per_second,
                active_slots=usage.held + rules.bucket_level(usage, now.timestamp()),
                leases=held,
                waiting=waiting.get(row.name, 0),
                created=row.created,
                updated=row.updated,
            )
        )
    return result


def _usage(row: Any, held: int) -> rules.LimitUsage:
    return rules.LimitUsage(
        name=row.name,
        limit=row.slot_limit,
        slot_decay_per_second=row.slot_decay_per_second,
        held=held,
        rate_empty_at=_epoch(row.rate_empty_at),
    )


def _lock_limits(
    connection: Connection, request: SlotRequest, clock: Callable[[], datetime]
) -> list[Any]:
    names = sorted(set(request.names))
    rows = list(connection.execute(_LOCK, {"names": names}))
    missing = sorted(set(names) - {row.name for row in rows})
    if not missing:
        return rows
    if not request.create_if_missing:
        raise ConcurrencyLimitNotFoundError(missing[0])
    statement = _insert_ignoring_conflicts(connection)
    now = clock()
    connection.execute(statement, [_limit_row(name, request.occupy, 0.0, now) for name in missing])
    return list(connection.execute(_LOCK, {"names": names}))


def _insert_ignoring_conflicts(connection: Connection) -> Any:
    # Two processes creating the same missing limit at once: the second keeps the first's.
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(_limits).on_conflict_do_nothing(index_elements=["name"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(_limits).on_conflict_do_nothing(index_elements=["name"])


def _utc_now() -> datetime:
    return datetime.now(UTC)


def acquire_slots(
    connection: Connection, request: SlotRequest, clock: Callable[[], datetime] = _utc_now
) -> SlotGrant:
    """One attempt at ``request``: take the slots, or keep (or take) a place in line.

    Expired leases and waiters count for nothing, so the slots of a holder that died go
    to the next in line; they are deleted when a request is refused (the uncontended
    path runs four statements: lock, count, look for waiters ahead, insert). The time
    is read from ``clock`` once the limit rows are locked: on PostgreSQL the wait for
    the lock can be long, and a decision made with a time from before it would be stale.
    """
    if not request.names:
        raise ValueError("name at least one concurrency limit")
    names = sorted({rules.validate_name(name) for name in request.names})
    rules.validate_occupy(request.occupy)
    rows = _lock_limits(connection, request, clock)
    now = clock()
    held = dict(connection.execute(_HELD, {"names": names, "now": now}).all())
    usages = [_usage(row, int(held.get(row.name) or 0)) for row in rows]
    for usage in usages:
        rules.check_request(usage, request.occupy, hold=request.hold)
    if request.ticket is None:
        ahead = connection.execute(_ANYONE_AHEAD, {"names": names, "now": now})
    else:
        ahead = connection.execute(
            _AHEAD_OF_TICKET, {"names": names, "now": now, "ticket": request.ticket}
        )
    first_in_line = ahead.first() is None
    verdict = rules.decide(usages, request.occupy, first_in_line=first_in_line, now=now.timestamp())
    if verdict.granted:
        lease_id = _take(connection, request, usages, now)
        if request.ticket is not None:
            delete_waiter(connection, request.ticket, names)
        return SlotGrant(granted=True, lease_id=lease_id)
    connection.execute(
        delete(_leases).where(_leases.c.limit_name.in_(names), _leases.c.expiration < now)
    )
    connection.execute(
        delete(_waiters).where(_waiters.c.limit_name.in_(names), _waiters.c.expiration < now)
    )
    ticket = _keep_place(connection, request, names, now)
    return SlotGrant(granted=False, ticket=ticket, retry_after=verdict.retry_after)


def _take(
    connection: Connection, request: SlotRequest, usages: list[rules.LimitUsage], now: datetime
) -> str | None:
    if not request.hold:
        for usage in usages:
            empty_at = rules.rate_empty_at_after(usage, request.occupy, now.timestamp())
            connection.execute(
                update(_limits)
                .where(_limits.c.name == usage.name)
                .values(rate_empty_at=datetime.fromtimestamp(empty_at, UTC))
            )
        return None
    lease_id = str(uuid.uuid4())
    holder = request.holder
    expiration = now + timedelta(seconds=request.lease_seconds)
    connection.execute(
        _INSERT_LEASE,
        [
            {
                "id": lease_id,
                "limit_name": usage.name,
                "slots": request.occupy,
                "flow_run_id": holder.flow_run_id,
                "task_run_id": holder.task_run_id,
                "hostname": holder.hostname,
                "pid": holder.pid,
                "expiration": expiration,
                "created": now,
            }
            for usage in usages
        ],
    )
    return lease_id


def _keep_place(
    connection: Connection, request: SlotRequest, names: list[str], now: datetime
) -> int:
    expiration = now + timedelta(seconds=request.lease_seconds)
    if request.ticket is not None:
        renewed = connection.execute(
            update(_waiters)
            .where(_waiters.c.ticket == request.ticket, _waiters.c.limit_name.in_(names))
            .values(expiration=expiration)
        )
        if renewed.rowcount == len(names):
            return request.ticket
        # The place expired (this waiter went silent for a whole lease): start again
        # at the back of the line.
        delete_waiter(connection, request.ticket, names)
    # Above every live ticket: transactions that share a limit are serialised by its
    # row lock, so two waiters in one line never get the same ticket.
    ticket = int(connection.execute(select(func.coalesce(func.max(_waiters.c.ticket), 0))).one()[0])
    ticket += 1
    connection.execute(
        insert(_waiters),
        [
            {
                "ticket": ticket,
                "limit_name": name,
                "slots": request.occupy,
                "expiration": expiration,
                "created": now,
            }
            for name in names
        ],
    )
    return ticket


def renew_leases(
    connection: Connection, lease_ids: Sequence[str], expiration: datetime
) -> list[str]:
    """Move the expiration of the given leases; return those that are gone."""
    if not lease_ids:
        return []
    connection.execute(
        update(_leases).where(_leases.c.id.in_(lease_ids)).values(expiration=expiration)
    )
    present = set(connection.scalars(select(_leases.c.id).where(_leases.c.id.in_(lease_ids))))
    return [lease_id for lease_id in lease_ids if lease_id not in present]


def delete_lease(connection: Connection, lease_id: str) -> None:
    connection.execute(_DELETE_LEASE, {"lease_id": lease_id})


def delete_waiter(connection: Connection, ticket: int, names: Sequence[str]) -> None:
    # By names too: on PostgreSQL, waiters in lines that share no limit may hold equal
    # tickets (their order never matters to each other).
    connection.execute(
        delete(_waiters).where(_waiters.c.ticket == ticket, _waiters.c.limit_name.in_(names))
    )
