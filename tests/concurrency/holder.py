"""A process that takes concurrency slots, run by the tests as ``python holder.py MODE``.

Modes (the store is the one named by ``RIVERRUN_DATABASE_URL``):
- ``cap NAME COUNTER N HOLD``: N times, hold a slot of NAME for HOLD seconds, counting
  holders in COUNTER (``current maximum``, under an exclusive file lock).
- ``hold NAME READY``: take a slot, write READY, then sleep until killed.
- ``wait NAME OUT``: take a slot (waiting in line), write the wall-clock time it was
  granted to OUT, release it.
- ``rate NAME OUT READY GO``: once connected, write READY; wait for GO, which holds
  the wall-clock START and END; from START to END call ``rate_limit(NAME)`` in a loop,
  then write the wall-clock time of each grant to OUT.
"""

from __future__ import annotations

import fcntl
import sys
import time
from pathlib import Path

from riverrun.concurrency.sync import concurrency, rate_limit


def count(counter: Path, step: int) -> None:
    """Add ``step`` to the holders in ``counter`` and keep the maximum seen."""
    with open(counter, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        current, highest = (int(part) for part in handle.read().split())
        current += step
        handle.seek(0)
        handle.truncate()
        handle.write(f"{current} {max(highest, current)}")
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_UN)


def main(mode: str, name: str, *args: str) -> None:
    if mode == "cap":
        counter, times, hold = Path(args[0]), int(args[1]), float(args[2])
        for _ in range(times):
            with concurrency(name):
                count(counter, 1)
                time.sleep(hold)
                count(counter, -1)
    elif mode == "hold":
        with concurrency(name):
            Path(args[0]).write_text("held")
            time.sleep(3600)
    elif mode == "wait":
        with concurrency(name):
            granted = time.time()
        Path(args[0]).write_text(repr(granted))
    elif mode == "rate":
        out, ready, go = Path(args[0]), Path(args[1]), Path(args[2])
        from riverrun.store import get_store

        get_store().read_concurrency_limit(name)  # connected and migrated
        ready.write_text("ready")
        while not go.exists():
            time.sleep(0.005)
        start, end = (float(part) for part in go.read_text().split())
        time.sleep(max(0.0, start - time.time()))
        calls: list[float] = []
        while time.time() < end:
            rate_limit(name)
            calls.append(time.time())
        out.write_text("\n".join(repr(t) for t in calls))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
