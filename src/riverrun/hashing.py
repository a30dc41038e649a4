"""Stable digests of task inputs, the same in every process and Python session.

``stable_digest(value)`` walks plain data itself instead of trusting ``pickle`` or
``hash()``: string hashing is salted per process, so a set's iteration order (and its
pickle) changes from one run to the next. Here sets and dict keys are put in a
canonical order, and each value is prefixed by its type, so ``1``, ``1.0``, ``True``
and ``"1"`` never share a digest.

Handled natively: ``None``, bools, ints, floats, complex, strings, bytes, lists,
tuples, dicts, sets, dates and times, ``Decimal``, ``UUID``, paths, enums, dataclasses,
pydantic models and arrays with ``dtype``/``shape``/``tobytes`` (numpy). Anything else
is pickled (its digest is stable when its pickle is); values that cannot be pickled
(locks, open files, generators) raise ``UnhashableInputError``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import hashlib
import pathlib
import uuid
from typing import Any

__all__ = ["UnhashableInputError", "digest_arguments", "scalar_key", "stable_digest"]

_MAX_DEPTH = 64


class UnhashableInputError(TypeError):
    """A value has no stable digest (it cannot be pickled, or nests too deeply)."""


def stable_digest(value: Any) -> str:
    """A hex SHA-256 of ``value``'s canonical encoding.

    Raises:
        UnhashableInputError: a part of ``value`` has no stable encoding.
    """
    digest = hashlib.sha256()
    _feed(digest.update, value, 0)
    return digest.hexdigest()


def digest_arguments(arguments: dict[str, Any]) -> str:
    """``stable_digest`` of a call's arguments; an error names the argument at fault.

    Raises:
        UnhashableInputError: an argument has no stable encoding.
    """
    memo_key = scalar_key(arguments)
    if memo_key is not None:
        found = _memo.get(memo_key)
        if found is not None:
            return found
    digest = hashlib.sha256()
    for name in sorted(arguments):
        try:
            encoded = _encoded(arguments[name], 1)
        except UnhashableInputError as error:
            raise UnhashableInputError(f"argument {name!r}: {error}") from None
        digest.update(_text(b"s", name))
        digest.update(encoded)
    hexdigest = digest.hexdigest()
    if memo_key is not None:
        if len(_memo) >= _MEMO_ENTRIES:
            _memo.clear()
        _memo[memo_key] = hexdigest
    return hexdigest


# Digests of recent argument sets made only of small immutable scalars (a cached task
# called again and again with the same inputs hashes them once). A digest is a pure
# function of the values, so this is right in every store and process.
_MEMO_ENTRIES = 4096
_MEMO_MAX_LENGTH = 256  # longer strings and bytes are hashed each time (not kept alive)
_memo: dict[tuple[Any, ...], str] = {}
_SIZED = (str, bytes)
_UNSIZED = (int, bool, type(None))


def scalar_key(arguments: dict[str, Any]) -> tuple[Any, ...] | None:
    """The arguments as a memo key (equal keys, equal digests), or ``None`` when one
    of them is not a plain scalar. Each value goes with its exact type (``1``, ``1.0``
    and ``True`` are equal keys but have distinct digests), a float as its ``repr``
    (``0.0 == -0.0``)."""
    key = []
    for name, value in arguments.items():
        kind = type(value)
        if kind in _SIZED:
            if len(value) > _MEMO_MAX_LENGTH:
                return None
        elif kind is float:
            value = repr(value)
        elif kind not in _UNSIZED:
            return None
        key.append((name, kind, value))
    return tuple(key)


def _encoded(value: Any, depth: int) -> bytes:
    parts: list[bytes] = []
    _feed(parts.append, value, depth)
    return b"".join(parts)


def _text(tag: bytes, text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return tag + str(len(data)).encode() + b":" + data


def _feed(out: Any, value: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise UnhashableInputError(f"input nests deeper than {_MAX_DEPTH} levels")
    kind = type(value)
    if value is None:
        out(b"N")
    elif kind is bool:
        out(b"T" if value else b"F")
    elif kind is int:
        out(_text(b"i", str(value)))
    elif kind is float:
        out(_text(b"f", repr(value)))
    elif kind is str:
        out(_text(b"s", value))
    elif kind is bytes or kind is bytearray:
        tag = b"b" if kind is bytes else b"B"
        out(tag + str(len(value)).encode() + b":" + bytes(value))
    elif kind is list or kind is tuple:
        out((b"l" if kind is list else b"t") + str(len(value)).encode() + b"[")
        for item in value:
            _feed(out, item, depth + 1)
        out(b"]")
    elif kind is dict:
        items = sorted(
            (_encoded(key, depth + 1), _encoded(item, depth + 1)) for key, item in value.items()
        )
        out(b"d" + str(len(items)).encode() + b"{")
        for key, item in items:
            out(key)
            out(item)
        out(b"}")
    elif kind is set or kind is frozenset:
        members = sorted(_encoded(item, depth + 1) for item in value)
        out(b"S" + str(len(members)).encode() + b"{")
        for member in members:
            out(member)
        out(b"}")
    else:
        _feed_other(out, value, depth)


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _feed_other(out: Any, value: Any, depth: int) -> None:
    try:
        _feed_object(out, value, depth)
    except UnhashableInputError:
        raise
    except Exception as error:
        # A value whose own methods fail (a mock passing for an array, a dataclass with
        # an unset field): no stable form, never a crash.
        raise UnhashableInputError(
            f"{type(value).__name__} value cannot be hashed ({type(error).__name__}: {error})"
        ) from None


def _feed_object(out: Any, value: Any, depth: int) -> None:
    kind = type(value)
    if isinstance(value, enum.Enum):
        out(_text(b"e", _qualified(kind)))
        _feed(out, value.value, depth + 1)
    elif isinstance(value, datetime.datetime | datetime.date | datetime.time | datetime.timedelta):
        out(_text(b"D", f"{_qualified(kind)}={value!r}"))
    elif isinstance(value, decimal.Decimal | uuid.UUID | pathlib.PurePath | complex):
        out(_text(b"V", f"{_qualified(kind)}={value!s}"))
    elif isinstance(value, int | float | str | bytes | list | tuple | dict | set | frozenset):
        # Subclasses (named tuples, IntEnum-free int subclasses, OrderedDict...): the
        # class name, then the plain value.
        out(_text(b"C", _qualified(kind)))
        base: Any = next(
            b
            for b in (bool, int, float, str, bytes, tuple, list, dict, frozenset, set)
            if isinstance(value, b)
        )
        _feed(out, base(value), depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out(_text(b"c", _qualified(kind)))
        _feed(
            out,
            {field.name: getattr(value, field.name) for field in dataclasses.fields(value)},
            depth + 1,
        )
    elif callable(getattr(value, "model_dump", None)) and hasattr(kind, "model_fields"):
        out(_text(b"m", _qualified(kind)))
        _feed(out, value.model_dump(), depth + 1)
    elif all(hasattr(value, name) for name in ("dtype", "shape", "tobytes")):
        out(_text(b"a", f"{_qualified(kind)}:{value.dtype}:{value.shape}"))
        data = bytes(value.tobytes())
        out(b"b" + str(len(data)).encode() + b":" + data)
    else:
        import pickle

        try:
            data = pickle.dumps(value, protocol=4)
        except Exception as error:
            raise UnhashableInputError(
                f"{kind.__name__} value cannot be hashed ({type(error).__name__}: {error})"
            ) from None
        out(_text(b"p", _qualified(kind)))
        out(b"b" + str(len(data)).encode() + b":" + data)
