"""Messages that carry what the workers read to the widgets that show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass
class RunsLoaded(Message):
    """A fresh read of the runs table (or why it could not be read)."""

    rows: list[dict[str, Any]]
    error: str | None = None
    missing: bool = False
    seconds: float = 0.0


@dataclass
class DetailLoaded(Message):
    """A fresh read of one run's metrics."""

    run_id: int
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class LogLines(Message):
    """New lines at the end of a log file (or why it could not be read)."""

    path: str
    lines: list[str]
    error: str | None = None


@dataclass
class QueryDone(Message):
    """The result of a read-only SQL query."""

    columns: list[str]
    rows: list[tuple]
    error: str | None = None
