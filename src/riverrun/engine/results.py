"""Cached task results on disk: pickles under ``$RIVERRUN_HOME/storage``.

A file's name is the SHA-256 of its cache key, so no key (whatever characters it
holds) can name a path outside the storage folder. Files are written to a temporary
name and renamed into place, so a reader never sees half a result.

The pickled bytes of recent results are kept in memory with the file's identity
(inode, size, modification time): a repeated read checks the file with one ``stat``
and unpickles the kept bytes — a fresh copy each time, as from the file — and reads
the file again whenever another process replaced it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["read_result", "write_result"]

_MEMO_ENTRIES = 1024
_MEMO_MAX_BYTES = 1 << 20  # larger results are read from their file each time
_memo: dict[Path, tuple[tuple[int, int, int], bytes]] = {}


def _identity(path: Path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _remember(path: Path, identity: tuple[int, int, int], payload: bytes) -> None:
    if len(payload) > _MEMO_MAX_BYTES:
        _memo.pop(path, None)
        return
    if len(_memo) >= _MEMO_ENTRIES:
        _memo.clear()
    _memo[path] = (identity, payload)


def _storage(home: Path) -> Path:
    return home / "storage"


def write_result(home: Path, key: str, value: Any) -> str:
    """Pickle ``value`` for ``key`` and return the location to record."""
    folder = _storage(home)
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(key.encode()).hexdigest()
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
        os.replace(temporary, folder / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _remember(folder / name, _identity(folder / name), payload)
    return name


def read_result(home: Path, location: str) -> Any:
    """Load the value stored at ``location``.

    Raises:
        FileNotFoundError: the file is gone (the caller treats it as a cache miss).
        ValueError: ``location`` is not a name this module wrote.
    """
    if not location or "/" in location or "\\" in location or location.startswith("."):
        raise ValueError(f"Not a result location: {location!r}")
    path = _storage(home) / location
    identity = _identity(path)
    kept = _memo.get(path)
    if kept is not None and kept[0] == identity:
        return pickle.loads(kept[1])
    with open(path, "rb") as handle:
        payload = handle.read()
    value = pickle.loads(payload)
    _remember(path, identity, payload)
    return value
