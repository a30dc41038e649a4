"""The spool: event batches a server could not take yet, kept on disk until it can.

One file per server URL under ``$RIVERRUN_HOME/spool/``, append-only JSON lines (one
batch a line), each append fsync'd before the store moves on. Processes sharing a
home share the file under an exclusive ``flock``; a delivery holds the lock from read
to truncate, so two processes never deliver the same lines at once — and were a
delivery cut short after the server took a batch, the server ignores the repeat
(every event carries its id).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["Spool"]

logger = logging.getLogger(__name__)


class Spool:
    """Batches of events waiting for the server at ``url``."""

    def __init__(self, home: Path, url: str) -> None:
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.path = home / "spool" / f"{digest}.jsonl"

    def __repr__(self) -> str:
        return f"Spool({str(self.path)!r})"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield descriptor
        finally:
            os.close(descriptor)  # also releases the lock

    def append(self, events: list[dict[str, Any]]) -> None:
        """Add one batch; durable (fsync'd) when this returns."""
        line = (json.dumps(events, separators=(",", ":")) + "\n").encode()
        with self._locked() as descriptor:
            os.write(descriptor, line)
            os.fsync(descriptor)

    def pending(self) -> bool:
        """Whether any batch waits (cheap: a stat)."""
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def deliver(self, send: Callable[[list[dict[str, Any]]], None]) -> int:
        """Send each waiting batch in order through ``send``; return how many were sent.

        The batches ``send`` took are removed; at the first one it raises for, the rest
        stay (that one first) and the error propagates.
        """
        if not self.pending():
            return 0
        with self._locked() as descriptor:
            with open(self.path, "rb") as handle:
                lines = [line for line in handle.read().split(b"\n") if line.strip()]
            sent = 0
            try:
                for line in lines:
                    try:
                        batch = json.loads(line)
                    except ValueError:
                        # A line cut short by a crash mid-append: nothing to deliver.
                        logger.error("Skipped an unreadable line in %s", self.path)
                    else:
                        send(batch)
                    sent += 1
            finally:
                rest = b"".join(line + b"\n" for line in lines[sent:])
                os.ftruncate(descriptor, 0)
                if rest:
                    os.write(descriptor, rest)
                os.fsync(descriptor)
            return sent
