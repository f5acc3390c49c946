"""Messages that carry what the workers read to the widgets that show it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from app.data.reader import RunDetail, RunSummary


@dataclass
class RunsLoaded(Message):
    """A fresh read of the runs table (or why it could not be read)."""

    rows: list[RunSummary]
    error: str | None = None
    missing: bool = False
    seconds: float = 0.0
    #: only the newest runs, read first so that a large database paints at once; every run follows
    first_page: bool = False


@dataclass
class DetailLoaded(Message):
    """A fresh read of one run's metrics (``data`` None: the database has no such run)."""

    run_id: int
    data: RunDetail | None = None
    error: str | None = None


@dataclass
class LogLines(Message):
    """New lines at the end of a log file (or why it could not be read)."""

    path: str
    lines: list[str]
    error: str | None = None
    #: the file is not there (yet)
    missing: bool = False


@dataclass
class QueryDone(Message):
    """The result of a read-only SQL query."""

    columns: list[str]
    rows: list[tuple]
    error: str | None = None
    #: more rows than the limit: ``rows`` holds the first ones only
    truncated: bool = False
    #: which run of the query screen this answers (a result of a superseded run is dropped)
    number: int = 0
