"""A process that takes concurrency slots, run by the tests as ``python holder.py MODE``.

Modes (the store is the one named by ``RIVERRUN_DATABASE_URL``):
- ``cap NAME COUNTER N HOLD``: N times, hold a slot of NAME for HOLD seconds, counting
  holders in COUNTER (``current maximum``, under an exclusive file lock).
- ``hold NAME READY``: take a slot, write READY, then sleep until killed.
- ``wait NAME OUT``: take a slot (waiting in line), write the wall-clock time it was
  granted to OUT, release it.
- ``rate NAME OUT START END``: from wall-clock START to END, call ``rate_limit(NAME)``
  in a loop, appending the wall-clock time of each grant to OUT.
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
        out, start, end = Path(args[0]), float(args[1]), float(args[2])
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
