"""How a persisted task result becomes bytes: ``"pickle"``, ``"cloudpickle"``, ``"json"``.

``@task(result_serializer=...)`` takes one of those names or any object with a
``name`` and ``dumps``/``loads`` methods. The name is recorded with every persisted
result, so a result is always read back with the serializer that wrote it.

- ``pickle`` (the default): any picklable value, read back as an equal copy.
- ``cloudpickle``: also functions and classes defined in ``__main__`` or inside
  functions.
- ``json``: plain data only (dicts, lists, strings, numbers, booleans, ``None``);
  readable by any tool, but tuples come back as lists and dict keys as strings.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CloudpickleSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "Serializer",
    "get_serializer",
]


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back; ``name`` is recorded with each result."""

    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, payload: bytes) -> Any: ...


class PickleSerializer:
    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        import pickle

        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, payload: bytes) -> Any:
        import pickle

        return pickle.loads(payload)


class CloudpickleSerializer:
    name = "cloudpickle"

    def dumps(self, value: Any) -> bytes:
        import cloudpickle

        return bytes(cloudpickle.dumps(value))

    def loads(self, payload: bytes) -> Any:
        import pickle

        return pickle.loads(payload)


class JSONSerializer:
    name = "json"

    def dumps(self, value: Any) -> bytes:
        import json

        return json.dumps(value, allow_nan=False).encode()

    def loads(self, payload: bytes) -> Any:
        import json

        return json.loads(payload)


_BUILT_IN: dict[str, Serializer] = {
    serializer.name: serializer
    for serializer in (PickleSerializer(), CloudpickleSerializer(), JSONSerializer())
}
# Serializer objects tasks of this process use, by name: a result is read back with the
# serializer whose name it was recorded with.
_known: dict[str, Serializer] = dict(_BUILT_IN)


def get_serializer(value: str | Serializer) -> Serializer:
    """The serializer a task option names (or the object itself, checked).

    Raises:
        ValueError: an unknown name.
        TypeError: an object without ``name``, ``dumps`` and ``loads``.
    """
    if isinstance(value, str):
        serializer = _known.get(value)
        if serializer is None:
            raise ValueError(
                f"Unknown result_serializer {value!r}: use one of "
                f"{', '.join(repr(name) for name in _BUILT_IN)} or a Serializer object"
            )
        return serializer
    if not isinstance(value, Serializer) or not isinstance(getattr(value, "name", None), str):
        raise TypeError(
            f"result_serializer must be a name or an object with a 'name' and "
            f"dumps()/loads() methods, got {value!r}"
        )
    if value.name in _BUILT_IN and value is not _BUILT_IN[value.name]:
        raise ValueError(f"A custom serializer cannot take the built-in name {value.name!r}")
    _known[value.name] = value
    return value
