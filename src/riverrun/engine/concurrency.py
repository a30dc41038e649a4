"""Tag concurrency: a task run tagged with a limit's name holds one slot of it.

The slots are taken just before the run's first Running state and given back once its
final state is recorded, whatever that state is (the engine releases them in a
``finally``). When no limit is named by any tag, which is the common case, this costs
a look-up in the store's cached set of limit names: no database round-trip per task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from riverrun.engine import slots
from riverrun.engine.effects import Call, RunLoop
from riverrun.exceptions import ConcurrencyLimitNotFoundError

if TYPE_CHECKING:
    from riverrun.logging import RunLogger
    from riverrun.store.protocol import RunStore, TaskRun

__all__ = ["release_tag_slots", "take_tag_slots"]


def take_tag_slots(
    store: RunStore | None, task_run: TaskRun, is_async: bool, logger: RunLogger
) -> RunLoop[slots.HeldSlots | None]:
    """Take one slot of every limit named by the run's tags, waiting as needed (an
    async run waits without blocking its event loop)."""
    if store is None or not task_run.tags:
        return None
    limited = store.concurrency_limit_names()
    names = tuple(tag for tag in task_run.tags if tag in limited) if limited else ()
    if not names:
        return None

    def waiting() -> None:
        logger.info("Waiting for a concurrency slot of %s", ", ".join(map(repr, names)))

    take = _take_async if is_async else _take
    outcome = yield Call(take, (store, names, waiting), {}, None)
    assert outcome is not None
    if outcome.error is not None:
        raise outcome.error
    held: slots.HeldSlots | None = outcome.value
    return held


def _take(
    store: RunStore, names: tuple[str, ...], waiting: Callable[[], None]
) -> slots.HeldSlots | None:
    while names:
        try:
            return slots.acquire(store, names, 1, hold=True, on_wait=waiting)
        except ConcurrencyLimitNotFoundError as error:
            # Deleted since the names were read: a tag without a limit limits nothing.
            names = tuple(name for name in names if name != error.name)
    return None


async def _take_async(
    store: RunStore, names: tuple[str, ...], waiting: Callable[[], None]
) -> slots.HeldSlots | None:
    while names:
        try:
            return await slots.aacquire(store, names, 1, hold=True, on_wait=waiting)
        except ConcurrencyLimitNotFoundError as error:
            names = tuple(name for name in names if name != error.name)
    return None


def release_tag_slots(held: slots.HeldSlots | None) -> None:
    """Give back the slots of ``take_tag_slots`` (never raises)."""
    slots.release(held)
