"""Taking concurrency slots and keeping them: waiting in line, renewing, waking.

The store decides (one transaction per attempt, rules in
``riverrun.orchestration.concurrency``); this module does the rest on the holder's side,
for any store, embedded or HTTP:

- An acquisition asks the store; when refused it waits and asks again, keeping its
  place in line (its ticket). The wait ends early when a slot is released by this
  process (the first waiter here in that limit's line is woken at once, and wakes the
  next once granted); otherwise it polls, from
  ``FIRST_POLL_SECONDS`` doubling to ``MAX_POLL_SECONDS``, or sleeps exactly until
  decay frees a rate slot. The logic is written once (``_Acquisition``); the sync and
  async drivers only differ in how they wait and call the store.
- One daemon thread per process renews every lease held here, three times per lease
  period, in one store call per store. A holder killed with ``kill -9`` stops renewing,
  and its slots go to the next in line once the lease expires.
- A release never raises: if the store cannot be reached, the lease is no longer
  renewed and expires on its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from riverrun.exceptions import AcquireConcurrencySlotTimeoutError
from riverrun.orchestration import concurrency as rules
from riverrun.store.protocol import ConcurrencyHolder, SlotGrant, SlotRequest

if TYPE_CHECKING:
    import asyncio

    from riverrun.store.protocol import RunStore

__all__ = ["HeldSlots", "aacquire", "acquire", "arelease", "current_holder", "release"]

logger = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class HeldSlots:
    """Slots taken by one acquisition (a lease until released)."""

    store: RunStore
    names: tuple[str, ...]
    occupy: int
    lease_id: str


# -- waking the waiters of this process ---------------------------------------------------

# The acquisitions of this process waiting in line, with how to wake each.
_waiting: dict[_Acquisition, Callable[[], None]] = {}
_waiting_lock = threading.Lock()


def _wake_next(names: tuple[str, ...]) -> None:
    """Wake this process's first waiter in line for each of ``names``.

    Only the first: under first come, first served nobody behind it can go before it,
    and waking every waiter would have them all queue for the limit rows' lock (a
    thundering herd that delays the one who can go). Once granted, it wakes the next.
    """
    first: dict[str, tuple[int, Callable[[], None]]] = {}
    with _waiting_lock:
        for acquisition, wake in _waiting.items():
            # Not in line yet: it is asking now. (Stores are not compared: a process-pool
            # worker wraps the same database in a new store per task, and waking one
            # waiter too many only costs it an early attempt.)
            ticket = acquisition.ticket
            if ticket is None:
                continue
            for name in acquisition.request.names:
                if name in names and (name not in first or ticket < first[name][0]):
                    first[name] = (ticket, wake)
    for wake in {id(wake): wake for _, wake in first.values()}.values():
        wake()


# -- renewing the leases of this process ---------------------------------------------------


class _Renewer:
    """The one thread that renews every lease this process holds."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[RunStore, float]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, lease_id: str, store: RunStore, lease_seconds: float) -> None:
        with self._lock:
            self._held[lease_id] = (store, lease_seconds)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._renew_forever, name="riverrun-concurrency-renew", daemon=True
                )
                self._thread.start()
        self._changed.set()

    def remove(self, lease_id: str) -> None:
        with self._lock:
            self._held.pop(lease_id, None)

    def forget_all(self) -> None:
        """In a forked child: the leases and the thread are the parent's."""
        self._held = {}
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._thread = None

    def _renew_forever(self) -> None:
        while True:
            with self._lock:
                held = dict(self._held)
            pause = min((rules.renew_interval(s) for _, s in held.values()), default=None)
            self._changed.wait(pause)
            self._changed.clear()
            if pause is None:
                continue
            self._renew(held)

    def _renew(self, held: dict[str, tuple[RunStore, float]]) -> None:
        by_store: dict[int, tuple[RunStore, float, list[str]]] = {}
        for lease_id, (store, lease_seconds) in held.items():
            entry = by_store.setdefault(id(store), (store, lease_seconds, []))
            entry[2].append(lease_id)
        for store, lease_seconds, lease_ids in by_store.values():
            with self._lock:  # released meanwhile: not ours to renew any more
                lease_ids = [lease_id for lease_id in lease_ids if lease_id in self._held]
            try:
                lost = store.renew_concurrency_leases(lease_ids, lease_seconds)
            except Exception:
                logger.warning("Could not renew concurrency leases; will retry", exc_info=True)
                continue
            for lease_id in lost:
                self.remove(lease_id)
                logger.warning(
                    "Concurrency lease %s was lost (expired or reset) while held; its "
                    "holder runs on without a slot",
                    lease_id,
                )


_renewer = _Renewer()


def _after_fork_in_child() -> None:
    global _waiting_lock
    _renewer.forget_all()
    _waiting.clear()
    _waiting_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


# -- acquiring ---------------------------------------------------------------------------

_hostname: str | None = None
# How often a waiter with another waiter of its process ahead of it asks anyway (it is
# woken when that one is served; this only guards against a wake-up lost to a crash).
_BEHIND_POLL_SECONDS = 1.0


def current_holder() -> ConcurrencyHolder:
    """This process, and the flow and task run in progress, as a lease holder."""
    global _hostname
    from riverrun.context import flow_run_context, task_run_context

    if _hostname is None:
        _hostname = socket.gethostname()
    task_context = task_run_context.get()
    flow_context = flow_run_context.get()
    return ConcurrencyHolder(
        flow_run_id=flow_context.flow_run.id if flow_context is not None else None,
        task_run_id=task_context.task_run.id if task_context is not None else None,
        hostname=_hostname,
        pid=os.getpid(),
    )


class _Acquisition:
    """What one acquisition knows between attempts: its place in line, its deadline
    and how long it last waited."""

    def __init__(
        self,
        store: RunStore,
        request: SlotRequest,
        timeout_seconds: float | None,
        on_wait: Callable[[], None] | None,
    ) -> None:
        self.store = store
        self.request = request
        self.timeout_seconds = timeout_seconds
        self.deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        self.on_wait = on_wait
        self.poll: float | None = None
        self.ticket: int | None = None

    def attempt(self) -> SlotGrant:
        request = self.request
        if self.ticket is not None:
            request = SlotRequest(
                names=request.names,
                occupy=request.occupy,
                hold=request.hold,
                lease_seconds=request.lease_seconds,
                holder=request.holder,
                ticket=self.ticket,
                create_if_missing=request.create_if_missing,
            )
        grant = self.store.acquire_concurrency_slots(request)
        if grant.granted:
            was_waiting, self.ticket = self.ticket is not None, None
            if grant.lease_id is not None:
                _renewer.add(grant.lease_id, self.store, request.lease_seconds)
            if was_waiting:
                _wake_next(request.names)  # the next may fit in what is left
        else:
            if self.ticket is None and self.on_wait is not None:
                self.on_wait()
            self.ticket = grant.ticket
        return grant

    def pause(self, grant: SlotGrant) -> float:
        """Seconds to wait before the next attempt (woken early by a release here).

        Raises:
            AcquireConcurrencySlotTimeoutError: the deadline has passed.
        """
        if grant.retry_after is not None:
            pause = grant.retry_after
        elif self._behind_another_waiter_here():
            # It will be woken by that waiter once served: no need to poll the database.
            pause = _BEHIND_POLL_SECONDS
        else:
            pause = self.poll = rules.next_poll(self.poll)
        # Ask again in time to keep the place in line alive.
        pause = min(pause, rules.renew_interval(self.request.lease_seconds))
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                assert self.timeout_seconds is not None
                raise AcquireConcurrencySlotTimeoutError(
                    self.request.names, self.request.occupy, self.timeout_seconds
                )
            pause = min(pause, left)
        return pause

    def _behind_another_waiter_here(self) -> bool:
        """Whether, in every line it waits in, a waiter of this process is ahead of it."""
        ticket = self.ticket
        if ticket is None:
            return False
        ahead: set[str] = set()
        with _waiting_lock:
            for other in _waiting:
                if other.store is self.store and other.ticket is not None and other.ticket < ticket:
                    ahead.update(other.request.names)
        return ahead.issuperset(self.request.names)

    def leave(self) -> None:
        """Give up the place in line, if there is one (never raises)."""
        if self.ticket is None:
            return
        ticket, self.ticket = self.ticket, None
        try:
            self.store.leave_concurrency_line(ticket, self.request.names)
        except Exception:
            logger.warning("Could not leave the concurrency line; it expires", exc_info=True)
        _wake_next(self.request.names)  # the next in line may go now

    def held(self, grant: SlotGrant) -> HeldSlots | None:
        if grant.lease_id is None:
            return None
        return HeldSlots(self.store, self.request.names, self.request.occupy, grant.lease_id)


def _request(
    names: tuple[str, ...], occupy: int, hold: bool, create_if_missing: bool
) -> SlotRequest:
    from riverrun.context import flow_run_context

    # The flow run's settings when there is one: reading them again costs more than
    # an uncontended acquisition's database work.
    context = flow_run_context.get()
    if context is not None:
        lease_seconds = context.settings.concurrency_lease_seconds
    else:
        from riverrun.settings import get_settings

        lease_seconds = get_settings().concurrency_lease_seconds
    return SlotRequest(
        names=names,
        occupy=occupy,
        hold=hold,
        lease_seconds=lease_seconds,
        holder=current_holder(),
        create_if_missing=create_if_missing,
    )


def acquire(
    store: RunStore,
    names: tuple[str, ...],
    occupy: int,
    *,
    hold: bool,
    timeout_seconds: float | None = None,
    create_if_missing: bool = False,
    on_wait: Callable[[], None] | None = None,
) -> HeldSlots | None:
    """Take ``occupy`` slots of every limit in ``names``, waiting in line as long as
    needed (or ``timeout_seconds``); returns the lease (``None`` for rate slots).

    Raises:
        AcquireConcurrencySlotTimeoutError: not granted in time.
        ConcurrencyLimitNotFoundError: a limit does not exist (and ``create_if_missing``
            is false).
        ValueError: the request can never be granted (see ``check_request``).
    """
    attempts = _Acquisition(
        store, _request(names, occupy, hold, create_if_missing), timeout_seconds, on_wait
    )
    woken = threading.Event()
    with _waiting_lock:
        _waiting[attempts] = woken.set
    try:
        while True:
            woken.clear()
            grant = attempts.attempt()
            if grant.granted:
                return attempts.held(grant)
            woken.wait(attempts.pause(grant))
    finally:
        with _waiting_lock:
            _waiting.pop(attempts, None)
        attempts.leave()


async def aacquire(
    store: RunStore,
    names: tuple[str, ...],
    occupy: int,
    *,
    hold: bool,
    timeout_seconds: float | None = None,
    create_if_missing: bool = False,
    on_wait: Callable[[], None] | None = None,
) -> HeldSlots | None:
    """``acquire`` without blocking the event loop: attempts run in a worker thread,
    waits are awaited."""
    import asyncio

    attempts = _Acquisition(
        store, _request(names, occupy, hold, create_if_missing), timeout_seconds, on_wait
    )
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()

    def wake() -> None:
        # RuntimeError: the loop has closed, so nobody is waiting on it any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(woken.set)

    with _waiting_lock:
        _waiting[attempts] = wake
    try:
        while True:
            woken.clear()
            attempt = asyncio.ensure_future(asyncio.to_thread(attempts.attempt))
            try:
                grant = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # The attempt runs on in its thread and may still be granted: give
                # those slots back when it ends, or they would be renewed forever.
                attempt.add_done_callback(lambda done: _release_late_grant(attempts, done))
                raise
            if grant.granted:
                return attempts.held(grant)
            pause = attempts.pause(grant)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), pause)
    finally:
        with _waiting_lock:
            _waiting.pop(attempts, None)
        attempts.leave()


def _release_late_grant(attempts: _Acquisition, done: asyncio.Future[SlotGrant]) -> None:
    if done.cancelled() or done.exception() is not None:
        return
    held = attempts.held(done.result())
    if held is not None:
        threading.Thread(target=release, args=(held,), daemon=True).start()


def release(held: HeldSlots | None) -> None:
    """Give the slots back and wake this process's waiters (never raises)."""
    if held is None:
        return
    _renewer.remove(held.lease_id)
    try:
        held.store.release_concurrency_lease(held.lease_id)
    except Exception:
        logger.warning(
            "Could not release concurrency slots of %s; they free when the lease expires",
            ", ".join(held.names),
            exc_info=True,
        )
    _wake_next(held.names)


async def arelease(held: HeldSlots | None) -> None:
    """``release`` without blocking the event loop."""
    if held is not None:
        import asyncio

        await asyncio.to_thread(release, held)
