"""Binding, validating and recording a flow's parameters."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import inspect
import math
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from riverrun.exceptions import ParameterTypeError

__all__ = ["Binder", "bind_arguments", "jsonable", "validate_parameters"]

_MAX_DEPTH = 20


class Binder:
    """Maps a call's arguments to parameter names, defaults applied.

    Most task functions take plain positional-or-keyword parameters; for those the
    mapping is a ``zip`` and a few dictionary look-ups, far cheaper than
    ``Signature.bind``. Anything else (``*args``, keyword-only parameters, a call that
    does not fit) goes through ``Signature.bind`` for its exact behaviour and errors.
    """

    __slots__ = ("_defaults", "_label", "_names", "_signature", "_simple")

    def __init__(self, signature: inspect.Signature, label: str) -> None:
        self._signature = signature
        self._label = label
        parameters = list(signature.parameters.values())
        self._simple = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)
        self._names = tuple(p.name for p in parameters)
        self._defaults = {
            p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty
        }

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name.

        Raises:
            TypeError: naming the function, when the arguments do not fit its signature.
        """
        names = self._names
        if self._simple and len(args) <= len(names):
            arguments = dict(zip(names, args, strict=False))
            fits = True
            for name, value in kwargs.items():
                if name in arguments or name not in names:
                    fits = False
                    break
                arguments[name] = value
            if fits and len(arguments) < len(names):
                for name in names[len(args) :]:
                    if name not in arguments:
                        if name not in self._defaults:
                            fits = False
                            break
                        arguments[name] = self._defaults[name]
            if fits:
                return arguments
        return dict(bind_arguments(self._signature, args, kwargs, self._label).arguments)


def bind_arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any], label: str
) -> inspect.BoundArguments:
    """Bind a call's arguments to the function's parameters, defaults applied.

    Raises:
        TypeError: naming the function when the arguments do not fit its signature.
    """
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{label}: {error}") from None
    bound.apply_defaults()
    return bound


def validate_parameters(
    flow_name: str,
    fn: Callable[..., Any],
    signature: inspect.Signature,
    bound: inspect.BoundArguments,
    cache: dict[str, Any],
) -> None:
    """Coerce ``bound``'s values to the type hints of ``fn`` (in place).

    Raises:
        ParameterTypeError: naming every parameter whose value does not fit.
    """
    plan = cache.get("plan")
    if plan is None:
        plan = cache["plan"] = _plan(fn, signature)
    exact, hinted = plan
    # A value whose type is exactly its plain hint (an int for `n: int`) is valid as
    # it is: pydantic is loaded only for the values that need it.
    pending = [
        name
        for name, value in bound.arguments.items()
        if name in hinted and type(value) is not exact.get(name)
    ]
    if not pending:
        return
    adapters = cache.get("adapters")
    if adapters is None:
        adapters = cache["adapters"] = _adapters(fn, signature)
    errors: list[tuple[str, Any, str]] = []
    for name in pending:
        value = bound.arguments[name]
        adapter = adapters.get(name)
        if adapter is None:
            continue
        try:
            bound.arguments[name] = adapter.validate_python(value)
        except Exception as error:  # pydantic.ValidationError, or a hint pydantic cannot use
            errors.append((name, value, _reason(error)))
    if errors:
        raise ParameterTypeError(flow_name, errors)


_EXACT = (int, float, str, bool, bytes)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception:
        # Hints that cannot be resolved (a name only imported under TYPE_CHECKING) are
        # skipped rather than failing every call.
        return {}


def _plan(fn: Callable[..., Any], signature: inspect.Signature) -> tuple[dict[str, type], set[str]]:
    """The parameters to validate, and those whose hint is a plain scalar type."""
    if all(p.annotation is p.empty for p in signature.parameters.values()):
        return {}, set()
    hints = _hints(fn)
    hinted = {
        name
        for name, parameter in signature.parameters.items()
        if name in hints
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    exact = {name: hints[name] for name in hinted if hints[name] in _EXACT}
    return exact, hinted


def _adapters(fn: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    from pydantic import ConfigDict, TypeAdapter

    hints = _hints(fn)
    config = ConfigDict(arbitrary_types_allowed=True)
    adapters: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        hint = hints.get(name)
        if hint is None or parameter.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            continue
        try:
            adapters[name] = TypeAdapter(hint, config=config)
        except Exception:
            try:
                adapters[name] = TypeAdapter(hint)
            except Exception:
                continue
    return adapters


def _reason(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        try:
            details = errors()
            return "; ".join(
                (".".join(str(part) for part in item["loc"]) + ": " if item["loc"] else "")
                + item["msg"]
                for item in details
            )
        except Exception:
            pass
    return str(error)


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``; anything else becomes its ``repr``.

    Never raises: a parameter that cannot be stored faithfully is stored as text rather
    than failing the run.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth > _MAX_DEPTH:
        return _safe_repr(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item, _depth + 1) for item in value]
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return jsonable(value.value, _depth + 1)
    if isinstance(value, uuid.UUID | Decimal | PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: jsonable(getattr(value, field.name), _depth + 1)
            for field in dataclasses.fields(value)
        }
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        try:
            return jsonable(model_dump(mode="json"), _depth + 1)
        except Exception:
            pass
    return _safe_repr(value)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"
