"""Where the engine's words go: the one place library code writes to the terminal or a log.

``say`` is a line for the person watching (stderr: the terminal, or ``train.log`` when the TUI
launched the command); ``out`` is a command's result (stdout: a table, DER lines, a resolved
config); ``progress_bar`` is the one builder of rich progress bars: live on a terminal, silent in
a log file (where commands write plain progress lines through ``say`` instead).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported when a bar is drawn: `say` and `out` stay cheap for every command
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn


def say(line: str) -> None:
    """One line on stderr, flushed (a log file tailed by the TUI sees it at once)."""
    print(line, file=sys.stderr, flush=True)


def out(line: str = "") -> None:
    """One line of a command's result on stdout."""
    print(line, flush=True)


def stderr_console(**options: Any) -> Console:
    """A rich console on stderr (what progress bars and rich tables for people draw on)."""
    from rich.console import Console

    return Console(file=sys.stderr, **options)


def progress_bar(*columns: ProgressColumn | str, console: Console | None = None, live: bool | None = None,
                 transient: bool = True) -> Progress:
    """A rich progress bar on stderr: ``columns`` between the description and bar, and the ETA.

    Drawn only when ``live`` (default: stderr is a terminal); in a log file it stays silent.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = console or stderr_console()
    live = console.is_terminal if live is None else live
    return Progress(*(columns or (TextColumn("{task.description}"), BarColumn())), TimeRemainingColumn(),
                    console=console, transient=transient, disable=not live)
