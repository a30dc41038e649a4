"""Concurrency limits through a riverrun server: the ``RunStore`` methods of ``HttpStore``.

Every method is one synchronous request to ``/api/concurrency_limits`` (the server runs
the embedded store's queries in one transaction, on its own clock). What the server
answers is turned back into what the embedded store raises, so the slot driver
(``riverrun.engine.slots``) and the CLI work the same on both:

- 404 ``ConcurrencyLimitNotFoundError``, 409 ``ConcurrencyLimitExistsError`` (the body
  names the limit), 422 ``ValueError`` (the body says what is wrong);
- no answer, a 5xx or a refused auth string: ``StoreUnavailableError``.

An acquisition is never retried here: a request whose answer was lost may have been
granted, and a second try would take the slots twice. The slot driver asks again
itself, with the place in line it has. Requests are checked against the rules before
they are sent, so a bad one costs no round-trip and fails with the embedded store's
message (JSON cannot even carry an infinite decay).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from riverrun.exceptions import (
    ConcurrencyLimitExistsError,
    ConcurrencyLimitNotFoundError,
    StoreUnavailableError,
)
from riverrun.orchestration import concurrency as rules
from riverrun.store.protocol import (
    ConcurrencyHolder,
    ConcurrencyLease,
    ConcurrencyLimit,
    SlotGrant,
    SlotRequest,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["ConcurrencyOverHttp"]

logger = logging.getLogger(__name__)

# As in the embedded store: how long the set of limit names is trusted before it is
# asked again, so that a tagged task run costs no request.
_LIMIT_NAMES_TTL = 2.0
# Leases renewed per request (the server takes at most 5,000).
_RENEW_BATCH = 1000
_PREFIX = "concurrency_limits"


def _by_name(name: str, suffix: str = "") -> str:
    # Every character escaped, dots too: a client normalises a ``..`` path segment away.
    return f"{_PREFIX}/name/{quote(name, safe='').replace('.', '%2E')}{suffix}"


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _holder_json(holder: ConcurrencyHolder) -> dict[str, Any]:
    return {
        "flow_run_id": holder.flow_run_id,
        "task_run_id": holder.task_run_id,
        "hostname": holder.hostname,
        "pid": holder.pid,
    }


def _limit(data: dict[str, Any]) -> ConcurrencyLimit:
    return ConcurrencyLimit(
        name=data["name"],
        limit=data["limit"],
        slot_decay_per_second=data["slot_decay_per_second"],
        active_slots=data["active_slots"],
        leases=[
            ConcurrencyLease(
                id=lease["id"],
                limit_name=lease["limit_name"],
                slots=lease["slots"],
                holder=ConcurrencyHolder(**lease["holder"]),
                expiration=_time(lease["expiration"]),
                created=_time(lease["created"]),
            )
            for lease in data["leases"]
        ],
        waiting=data["waiting"],
        created=_time(data["created"]),
        updated=_time(data["updated"]),
    )


def _problem(response: httpx.Response) -> str:
    """The reason a 422 gives: the rules' sentence, or pydantic's list of field errors."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:500]
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', ())[1:])}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        )
    return str(detail)


class ConcurrencyOverHttp:
    """The concurrency-limit methods of ``HttpStore`` (see the module)."""

    url: str
    # (monotonic time read, names) of the concurrency limits; None: not read yet.
    _limit_names: tuple[float, frozenset[str]] | None = None

    if TYPE_CHECKING:

        def _call(self, method: str, path: str, body: Any = None) -> httpx.Response: ...

    def _limits_request(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the answer's JSON (``None`` for 204), or the embedded store's
        exception."""
        # Imported here: ``http`` imports this module to build ``HttpStore``.
        from riverrun.store.http import _Unavailable

        try:
            response = self._call(method, path, body)
        except _Unavailable as error:
            raise StoreUnavailableError(self.url, str(error)) from None
        code = response.status_code
        if code < 400:
            return None if code == 204 else response.json()
        try:
            answer = response.json()
        except ValueError:
            answer = None
        # Only the concurrency routes name a limit: a bare 404 is a route this server
        # lacks (one older than concurrency limits), not a missing limit.
        name = answer.get("name") if isinstance(answer, dict) else None
        if code == 404 and isinstance(name, str):
            raise ConcurrencyLimitNotFoundError(name)
        if code == 409 and isinstance(name, str):
            raise ConcurrencyLimitExistsError(name)
        if code == 422:
            raise ValueError(_problem(response))
        raise StoreUnavailableError(self.url, f"HTTP {code}: {_problem(response)}")

    def create_concurrency_limit(
        self, name: str, limit: int, *, slot_decay_per_second: float = 0.0
    ) -> ConcurrencyLimit:
        rules.validate_name(name)
        rules.validate_limit(limit)
        rules.validate_decay(slot_decay_per_second)
        body = {"name": name, "limit": limit, "slot_decay_per_second": slot_decay_per_second}
        try:
            return _limit(self._limits_request("POST", f"{_PREFIX}/", body))
        finally:
            self._limit_names = None

    def update_concurrency_limit(
        self, name: str, *, limit: int | None = None, slot_decay_per_second: float | None = None
    ) -> ConcurrencyLimit:
        if limit is not None:
            rules.validate_limit(limit)
        if slot_decay_per_second is not None:
            rules.validate_decay(slot_decay_per_second)
        body = {"limit": limit, "slot_decay_per_second": slot_decay_per_second}
        return _limit(self._limits_request("PATCH", _by_name(name), body))

    def delete_concurrency_limit(self, name: str) -> None:
        try:
            self._limits_request("DELETE", _by_name(name))
        finally:
            self._limit_names = None

    def reset_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        return _limit(self._limits_request("POST", _by_name(name, "/reset")))

    def read_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        return _limit(self._limits_request("GET", _by_name(name)))

    def read_concurrency_limits(self) -> list[ConcurrencyLimit]:
        return [_limit(data) for data in self._limits_request("POST", f"{_PREFIX}/filter", {})]

    def concurrency_limit_names(self) -> frozenset[str]:
        cached = self._limit_names
        now = time.monotonic()
        if cached is not None and now - cached[0] < _LIMIT_NAMES_TTL:
            return cached[1]
        try:
            names = frozenset(self._limits_request("GET", f"{_PREFIX}/names")["names"])
        except StoreUnavailableError as error:
            if cached is None:
                raise
            # Keep the names last read (asking again in a while, not at every task run):
            # a tag that named no limit then still names none; one that did fails to
            # take its slot, which needs the server anyway.
            logger.warning("Could not refresh the concurrency limit names: %s", error)
            self._limit_names = (now, cached[1])
            return cached[1]
        self._limit_names = (now, names)
        return names

    def acquire_concurrency_slots(self, request: SlotRequest) -> SlotGrant:
        if not request.names:
            raise ValueError("name at least one concurrency limit")
        for name in request.names:
            rules.validate_name(name)
        rules.validate_occupy(request.occupy)
        body = {
            "names": list(request.names),
            "occupy": request.occupy,
            "hold": request.hold,
            "lease_seconds": request.lease_seconds,
            "holder": _holder_json(request.holder),
            "ticket": request.ticket,
            "create_if_missing": request.create_if_missing,
        }
        try:
            data = self._limits_request("POST", f"{_PREFIX}/acquire", body)
        finally:
            if request.create_if_missing:
                self._limit_names = None
        return SlotGrant(
            granted=data["granted"],
            lease_id=data["lease_id"],
            ticket=data["ticket"],
            retry_after=data["retry_after"],
        )

    def renew_concurrency_leases(self, lease_ids: list[str], lease_seconds: float) -> list[str]:
        lost: list[str] = []
        for start in range(0, len(lease_ids), _RENEW_BATCH):
            body = {
                "lease_ids": lease_ids[start : start + _RENEW_BATCH],
                "lease_seconds": lease_seconds,
            }
            lost.extend(self._limits_request("POST", f"{_PREFIX}/renew", body)["lost"])
        return lost

    def release_concurrency_lease(self, lease_id: str) -> None:
        self._limits_request("POST", f"{_PREFIX}/release", {"lease_id": lease_id})

    def leave_concurrency_line(self, ticket: int, names: tuple[str, ...]) -> None:
        body = {"ticket": ticket, "names": list(names)}
        self._limits_request("POST", f"{_PREFIX}/leave_line", body)
