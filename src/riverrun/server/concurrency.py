"""The routes of concurrency limits, under ``/api/concurrency_limits``.

Each route is one transaction running the queries the embedded store runs
(``riverrun.db.concurrency``), so a limit is enforced the same way whether its holders
reach the database directly or through any number of servers. Times are the server's:
a client sends how long a lease lives, never when it expires, so clocks that disagree
between machines cannot stretch or cut a lease.

Errors are answered as the HTTP store turns them back into the embedded store's
exceptions: 404 ``ConcurrencyLimitNotFoundError`` and 409 ``ConcurrencyLimitExistsError``
(both with the limit's ``name`` in the body), 422 a request the rules refuse (the
``detail`` names the problem).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from riverrun.db import concurrency
from riverrun.db.engine import read_connection
from riverrun.exceptions import ConcurrencyLimitExistsError, ConcurrencyLimitNotFoundError
from riverrun.store.protocol import (
    ConcurrencyHolder,
    ConcurrencyLease,
    ConcurrencyLimit,
    SlotRequest,
)

__all__ = ["router"]

# Size limits only: the rules (``riverrun.orchestration.concurrency``) check the rest
# and say what is wrong in the words the embedded store uses (a name over 255
# characters, a negative limit), so these let such values through to them.
LimitName = Annotated[str, StringConstraints(max_length=1024)]
Names = Annotated[list[LimitName], Field(min_length=1, max_length=1000)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=36)]
Slots = Annotated[int, Field(strict=True, ge=-(2**31), le=2**31 - 1)]
Decay = Annotated[float, Field(ge=-1e12, le=1e12)]
# Up to a year: past that a lease is no lease, and the expiration stays a valid date.
LeaseSeconds = Annotated[float, Field(gt=0, le=366 * 86_400)]
Ticket = Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)]
MAX_LEASES = 5000


class _Answers(APIRoute):
    """Turns the store's exceptions into the answers the HTTP store expects."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ConcurrencyLimitNotFoundError as error:
                return _error(404, str(error), error.name)
            except ConcurrencyLimitExistsError as error:  # a ValueError: before the next
                return _error(409, str(error), error.name)
            except ValueError as error:
                return _error(422, str(error))

        return answer


def _error(status_code: int, detail: str, name: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if name is not None:
        body["name"] = name
    return JSONResponse(body, status_code=status_code)


router = APIRouter(
    prefix="/api/concurrency_limits", tags=["concurrency limits"], route_class=_Answers
)


class ErrorOut(BaseModel):
    detail: str
    name: str | None = None


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No concurrency limit of that name"}
}
REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "The rules refuse the request (the detail says why)"}
}


# -- bodies ---------------------------------------------------------------------------------


class Body(BaseModel):
    """Unknown fields are refused, so a misspelt field is an error and not ignored."""

    model_config = ConfigDict(extra="forbid")


class LimitCreate(Body):
    name: LimitName
    limit: Slots
    slot_decay_per_second: Decay = 0.0


class LimitUpdate(Body):
    limit: Slots | None = None
    slot_decay_per_second: Decay | None = None


class LimitFilter(Body):
    names: Names | None = None


class HolderIO(Body):
    flow_run_id: Id | None = None
    task_run_id: Id | None = None
    hostname: Annotated[str, StringConstraints(max_length=255)] | None = None
    pid: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None


class LeaseOut(BaseModel):
    id: str
    limit_name: str
    slots: int
    holder: HolderIO
    expiration: AwareDatetime
    created: AwareDatetime

    @classmethod
    def of(cls, lease: ConcurrencyLease) -> LeaseOut:
        holder = lease.holder
        return cls(
            id=lease.id,
            limit_name=lease.limit_name,
            slots=lease.slots,
            holder=HolderIO(
                flow_run_id=holder.flow_run_id,
                task_run_id=holder.task_run_id,
                hostname=holder.hostname,
                pid=holder.pid,
            ),
            expiration=lease.expiration,
            created=lease.created,
        )


class LimitOut(BaseModel):
    name: str
    limit: int
    slot_decay_per_second: float
    active_slots: float
    leases: list[LeaseOut]
    waiting: int
    created: AwareDatetime
    updated: AwareDatetime

    @classmethod
    def of(cls, limit: ConcurrencyLimit) -> LimitOut:
        return cls(
            name=limit.name,
            limit=limit.limit,
            slot_decay_per_second=limit.slot_decay_per_second,
            active_slots=limit.active_slots,
            leases=[LeaseOut.of(lease) for lease in limit.leases],
            waiting=limit.waiting,
            created=limit.created,
            updated=limit.updated,
        )


class NamesOut(BaseModel):
    names: list[str]


class SlotRequestIn(Body):
    names: Names
    occupy: Slots
    hold: bool
    lease_seconds: LeaseSeconds
    holder: HolderIO = Field(default_factory=HolderIO)
    ticket: Ticket | None = None
    create_if_missing: bool = False

    def to_request(self) -> SlotRequest:
        holder = self.holder
        return SlotRequest(
            names=tuple(self.names),
            occupy=self.occupy,
            hold=self.hold,
            lease_seconds=self.lease_seconds,
            holder=ConcurrencyHolder(
                holder.flow_run_id, holder.task_run_id, holder.hostname, holder.pid
            ),
            ticket=self.ticket,
            create_if_missing=self.create_if_missing,
        )


class SlotGrantOut(BaseModel):
    granted: bool
    lease_id: str | None = None
    ticket: int | None = None
    retry_after: float | None = None


class RenewIn(Body):
    lease_ids: Annotated[list[Id], Field(max_length=MAX_LEASES)]
    lease_seconds: LeaseSeconds


class RenewOut(BaseModel):
    lost: list[str]


class ReleaseIn(Body):
    lease_id: Id


class LeaveLineIn(Body):
    ticket: Ticket
    names: Names


# -- routes -----------------------------------------------------------------------------------


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _read_one(engine: Engine, name: str) -> LimitOut:
    with read_connection(engine) as connection:
        found = concurrency.select_limits(connection, datetime.now(UTC), [name])
    if not found:
        raise ConcurrencyLimitNotFoundError(name)
    return LimitOut.of(found[0])


@router.post("/", status_code=status.HTTP_201_CREATED, responses=REFUSED)
def create_limit(body: LimitCreate, request: Request) -> LimitOut:
    """Create a limit; 409 if the name is taken."""
    engine = _engine(request)
    now = datetime.now(UTC)
    try:
        with engine.begin() as connection:
            concurrency.insert_limit(
                connection, body.name, body.limit, body.slot_decay_per_second, now
            )
    except IntegrityError:
        raise ConcurrencyLimitExistsError(body.name) from None  # created meanwhile elsewhere
    return _read_one(engine, body.name)


@router.post("/filter")
def filter_limits(body: LimitFilter, request: Request) -> list[LimitOut]:
    """Every limit (or those named), by name, with its leases and waiters."""
    with read_connection(_engine(request)) as connection:
        limits = concurrency.select_limits(connection, datetime.now(UTC), body.names)
    return [LimitOut.of(limit) for limit in limits]


@router.get("/names")
def limit_names(request: Request) -> NamesOut:
    """The names of every limit (what a client checks a task run's tags against)."""
    with read_connection(_engine(request)) as connection:
        return NamesOut(names=sorted(concurrency.select_limit_names(connection)))


@router.get("/name/{name:path}", responses=NOT_FOUND)
def read_limit(name: str, request: Request) -> LimitOut:
    return _read_one(_engine(request), name)


@router.patch("/name/{name:path}", responses=NOT_FOUND | REFUSED)
def update_limit(name: str, body: LimitUpdate, request: Request) -> LimitOut:
    """Change a limit's size or slot decay (the leases it has are kept)."""
    engine = _engine(request)
    with engine.begin() as connection:
        concurrency.update_limit(
            connection,
            name,
            datetime.now(UTC),
            limit=body.limit,
            decay=body.slot_decay_per_second,
        )
    return _read_one(engine, name)


@router.delete("/name/{name:path}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_limit(name: str, request: Request) -> None:
    """Delete a limit with its leases and waiters (its holders run on, unlimited)."""
    with _engine(request).begin() as connection:
        concurrency.delete_limit(connection, name)


@router.post("/name/{name:path}/reset", responses=NOT_FOUND)
def reset_limit(name: str, request: Request) -> LimitOut:
    """Free every slot: drop the limit's leases, waiters and rate slots."""
    engine = _engine(request)
    with engine.begin() as connection:
        concurrency.reset_limit(connection, name, datetime.now(UTC))
    return _read_one(engine, name)


@router.post("/acquire", responses=NOT_FOUND | REFUSED)
def acquire_slots(body: SlotRequestIn, request: Request) -> SlotGrantOut:
    """One attempt, in one transaction: grant the slots or give a place in line."""
    with _engine(request).begin() as connection:
        grant = concurrency.acquire_slots(connection, body.to_request())
    return SlotGrantOut(
        granted=grant.granted,
        lease_id=grant.lease_id,
        ticket=grant.ticket,
        retry_after=grant.retry_after,
    )


@router.post("/renew")
def renew_leases(body: RenewIn, request: Request) -> RenewOut:
    """Push back the expiration of leases; ``lost`` lists those no longer held."""
    expiration = datetime.now(UTC) + timedelta(seconds=body.lease_seconds)
    with _engine(request).begin() as connection:
        return RenewOut(lost=concurrency.renew_leases(connection, body.lease_ids, expiration))


@router.post("/release", status_code=status.HTTP_204_NO_CONTENT)
def release_lease(body: ReleaseIn, request: Request) -> None:
    """Give a lease's slots back (a lease already gone is no error)."""
    with _engine(request).begin() as connection:
        concurrency.delete_lease(connection, body.lease_id)


@router.post("/leave_line", status_code=status.HTTP_204_NO_CONTENT)
def leave_line(body: LeaveLineIn, request: Request) -> None:
    """Give up a place in line (an acquisition timed out or was interrupted)."""
    with _engine(request).begin() as connection:
        concurrency.delete_waiter(connection, body.ticket, body.names)
