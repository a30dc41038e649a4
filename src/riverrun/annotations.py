"""Wrappers that change how the engine treats an argument of a task.

Example:
    >>> add.map([1, 2, 3], unmapped(10))          # 10 is passed to every call
    >>> report(allow_failure(flaky.submit()))     # runs even if flaky fails
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["allow_failure", "unmapped"]

T = TypeVar("T")


class _Annotation(Generic[T]):
    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.value == self.value

    def __hash__(self) -> int:
        return hash((type(self), id(self.value)))


class allow_failure(_Annotation[T]):
    """Run the task even if the futures inside ``value`` did not complete.

    A failed upstream future is replaced by its exception instead of its result.
    """


class unmapped(_Annotation[T]):
    """Pass ``value`` whole to every call of ``task.map`` instead of iterating it."""
