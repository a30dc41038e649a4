"""Persisted task results: files in a storage folder, and references to them.

A ``ResultRef`` names one persisted result: its storage folder, its key (a relative
path inside that folder), the serializer that wrote it and, for resuming a flow run,
a digest of the inputs the run was called with. It is recorded as JSON text (in a
cache entry's ``location`` and in a task run's ``result``).

Invariants:
- A key never leaves its folder: absolute keys, ``..`` parts and symlinks pointing
  out are refused with ``InvalidResultStorageKeyError``, when writing and reading.
- A file is written to a temporary name and renamed into place: a reader never sees
  half a result, and a crash leaves the previous file whole.
- The serialized bytes of recent small results are kept in memory with the file's
  identity (inode, size, modification time); a repeated read checks the file with one
  ``stat`` and deserializes the kept bytes, a fresh copy each time, and reads the file
  again whenever another process replaced it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from riverrun.exceptions import InvalidResultStorageKeyError
from riverrun.serializers import Serializer, get_serializer

__all__ = [
    "OverwrittenResultError",
    "ResultRef",
    "check_key",
    "default_storage",
    "key_for_cache",
    "read_result",
    "render_key",
    "write_result",
]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_MEMO_ENTRIES = 1024
_MEMO_MAX_BYTES = 1 << 20  # larger results are read from their file each time
# Keyed by the path's text: a str hashes and compares in C, a Path in Python.
_memo: dict[str, tuple[tuple[int, int, int], bytes, str]] = {}


class OverwrittenResultError(LookupError):
    """The file a reference names now holds another result (a fixed storage key that
    several runs or cache keys write to): the reference's result is gone."""


@dataclass(slots=True, frozen=True)
class ResultRef:
    """Where a persisted result is and how to read it."""

    storage: str
    key: str
    serializer: str
    inputs: str | None = None  # digest of the run's arguments
    task: str | None = None  # digest of the task's identity (see Task.identity)
    digest: str | None = None  # SHA-256 of the bytes written

    def encode(self) -> str:
        fields = {"storage": self.storage, "key": self.key, "serializer": self.serializer}
        for name in ("inputs", "task", "digest"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str, home: Path) -> ResultRef:
        """Read a recorded reference (or a bare file name, as recorded before 0.3:
        a pickle in the default folder).

        Raises:
            ValueError: the text is not a reference.
        """
        return _decode(text, home)

    @property
    def path(self) -> Path:
        return _inside(self.storage, self.key)


@functools.lru_cache(maxsize=4096)
def _decode(text: str, home: Path) -> ResultRef:
    # Remembered: a cache hit decodes the same reference again and again.
    if not text.startswith("{"):
        return ResultRef(str(default_storage(home)), check_key(text), "pickle")
    try:
        fields = json.loads(text)
        return ResultRef(
            str(fields["storage"]),
            check_key(str(fields["key"])),
            str(fields["serializer"]),
            fields.get("inputs"),
            fields.get("task"),
            fields.get("digest"),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Not a result reference: {text[:200]!r}") from error


@functools.lru_cache(maxsize=64)
def default_storage(home: Path) -> Path:
    return home / "storage"


@functools.lru_cache(maxsize=4096)
def key_for_cache(cache_key: str) -> str:
    """The file name of a cached result: any cache key maps to a safe name."""
    return hashlib.sha256(cache_key.encode()).hexdigest()


def check_key(key: str) -> str:
    """``key`` as a relative path that stays inside its folder, '/'-separated.

    Raises:
        InvalidResultStorageKeyError: empty, absolute, with a ``..`` part or a NUL.
    """
    if isinstance(key, str) and _PLAIN_NAME.fullmatch(key):
        return key  # one safe file name: nothing to normalise
    if not isinstance(key, str) or not key.strip():
        raise InvalidResultStorageKeyError(key, "it is empty")
    if "\x00" in key:
        raise InvalidResultStorageKeyError(key, "it contains a NUL character")
    normal = key.replace("\\", "/")
    if normal.startswith("/") or (os.name == "nt" and len(normal) > 1 and normal[1] == ":"):
        raise InvalidResultStorageKeyError(key, "it is an absolute path")
    parts = [part for part in PurePosixPath(normal).parts if part not in ("", ".")]
    if ".." in parts:
        raise InvalidResultStorageKeyError(key, "it has a '..' part")
    if not parts:
        raise InvalidResultStorageKeyError(key, "it names the storage folder itself")
    return "/".join(parts)


@functools.lru_cache(maxsize=4096)
def _inside(storage: str, key: str) -> Path:
    """The path of ``key`` in ``storage``, checked once per pair (a read checks only
    that the name is lexically inside; ``_inside_now`` re-resolves before writes)."""
    return _inside_now(storage, key)


def _inside_now(storage: str, key: str) -> Path:
    root = Path(storage)
    path = root / check_key(key)
    # A symlink inside the folder could point out of it: resolved at each write.
    if not path.resolve().is_relative_to(root.resolve()):
        raise InvalidResultStorageKeyError(key, f"it resolves outside {root}")
    return path


def render_key(template: str, parameters: dict[str, Any], **fields: Any) -> str:
    """Fill a ``result_storage_key`` template (``"{parameters[name]}.pkl"``), checked.

    Raises:
        InvalidResultStorageKeyError: the template names something unknown, or the
            result leaves the storage folder.
    """
    try:
        key = template.format(parameters=parameters, **fields)
    except (KeyError, IndexError, AttributeError, ValueError) as error:
        raise InvalidResultStorageKeyError(
            template, f"it cannot be filled in ({type(error).__name__}: {error})"
        ) from None
    return check_key(key)


def write_result(ref: ResultRef, value: Any, serializer: Serializer | None = None) -> ResultRef:
    """Serialize ``value`` into the file ``ref`` names, atomically; the reference
    returned carries the digest of the bytes written.

    Raises:
        InvalidResultStorageKeyError: the key leaves the folder.
        Exception: whatever the serializer raises for a value it cannot write.
    """
    serializer = serializer or get_serializer(ref.serializer)
    payload = serializer.dumps(value)
    digest = hashlib.sha256(payload).hexdigest()
    path = _inside_now(ref.storage, ref.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    where = str(path)
    _remember(where, _identity(where), payload, digest)
    return ResultRef(ref.storage, ref.key, ref.serializer, ref.inputs, ref.task, digest)


def read_result(ref: ResultRef) -> Any:
    """Load the value ``ref`` names.

    Raises:
        FileNotFoundError: the file is gone (callers treat it as "not persisted").
        OverwrittenResultError: the file holds other bytes than those ``ref`` recorded.
        InvalidResultStorageKeyError: the key leaves the folder.
        ValueError: the serializer is not known in this process.
    """
    return read_at(str(ref.path), ref)


def read_at(where: str, ref: ResultRef, *, check: bool = True) -> Any:
    """``read_result(ref)`` for a caller that already holds ``str(ref.path)`` (a cache
    hit keeps it with its entry): the file is checked with one ``stat``, or, with
    ``check=False``, not at all when this process holds its bytes already (the caller
    checked it a moment ago: a ``stat`` lets the runs' other threads take the
    interpreter lock, which costs a hit more than the rest of it)."""
    serializer = get_serializer(ref.serializer)
    kept = _memo.get(where)
    if check or kept is None:
        identity = _identity(where)
        if kept is not None and kept[0] != identity:
            kept = None
    if kept is not None:
        payload, digest = kept[1], kept[2]
    else:
        with open(where, "rb") as handle:
            payload = handle.read()
        digest = hashlib.sha256(payload).hexdigest()
        _remember(where, identity, payload, digest)
    if ref.digest is not None and ref.digest != digest:
        raise OverwrittenResultError(f"{where} was overwritten by another result")
    return serializer.loads(payload)


def delete_result(ref: ResultRef) -> bool:
    """Remove the file ``ref`` names; whether there was one."""
    path = ref.path
    _memo.pop(str(path), None)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _identity(path: str) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _remember(path: str, identity: tuple[int, int, int], payload: bytes, digest: str) -> None:
    if len(payload) > _MEMO_MAX_BYTES:
        _memo.pop(path, None)
        return
    if len(_memo) >= _MEMO_ENTRIES:
        _memo.clear()
    _memo[path] = (identity, payload, digest)
