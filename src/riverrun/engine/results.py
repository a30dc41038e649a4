"""Cached task results on disk: pickles under ``$RIVERRUN_HOME/storage``.

A file's name is the SHA-256 of its cache key, so no key (whatever characters it
holds) can name a path outside the storage folder. Files are written to a temporary
name and renamed into place, so a reader never sees half a result.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["read_result", "write_result"]


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
    return name


def read_result(home: Path, location: str) -> Any:
    """Load the value stored at ``location``.

    Raises:
        FileNotFoundError: the file is gone (the caller treats it as a cache miss).
        ValueError: ``location`` is not a name this module wrote.
    """
    if not location or "/" in location or "\\" in location or location.startswith("."):
        raise ValueError(f"Not a result location: {location!r}")
    with open(_storage(home) / location, "rb") as handle:
        return pickle.load(handle)
