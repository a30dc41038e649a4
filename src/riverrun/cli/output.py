"""Plain-text formatting shared by the commands: tables, times and durations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

__all__ = ["format_clock", "format_duration", "format_time", "one_line", "table"]


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, indent: str = "") -> str:
    """Lay out rows under headers in columns as wide as their widest cell.

    Columns are separated by two spaces and lines carry no trailing blanks.

    Example:
        >>> print(table(["ID", "NAME"], [["1", "nimble-falcon"]]))
        ID  NAME
        1   nimble-falcon
    """
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(headers))]
    return "\n".join(
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def format_time(value: datetime | None, *, milliseconds: bool = False) -> str:
    """A timestamp in the local time zone (``YYYY-MM-DD HH:MM:SS``), ``-`` when unset."""
    if value is None:
        return "-"
    text = value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{value.microsecond // 1000:03d}" if milliseconds else text


def format_clock(value: datetime) -> str:
    """The local time of day with milliseconds (``HH:MM:SS.mmm``), as the console shows it."""
    return f"{value.astimezone().strftime('%H:%M:%S')}.{value.microsecond // 1000:03d}"


def format_duration(seconds: float | None) -> str:
    """A duration for people: ``1.2s``, ``3m 4s``, ``2h 0m 5s``; ``-`` when unfinished."""
    if seconds is None:
        return "-"
    if round(seconds, 1) < 60:
        return f"{max(seconds, 0.0):.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def one_line(text: str | None) -> str:
    """Text folded onto one line for a table cell (``-`` when empty)."""
    if not text:
        return "-"
    return " ".join(text.split())
