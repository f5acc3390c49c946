"""Where the engine's words go: the one place library code writes to the terminal or a log.

``say`` is a line for the person watching (stderr: the terminal, or ``train.log`` when the TUI
launched the command); ``out`` is a command's result (stdout: a table, DER lines), ``out_text`` one
given whole (a resolved config, a batch script, CSV); ``stdout_console`` and ``stderr_console``
are the rich consoles that tables and bars draw on; ``progress_bar`` is the one builder of rich
progress bars: live on a terminal, silent in a log file (where commands write plain progress lines
through ``say`` instead); ``while_loading`` is the spinner of a command's first seconds.
``tests/test_architecture.py`` finds no other module that writes to the terminal.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import re
import sys
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported when a bar is drawn: `say` and `out` stay cheap for every command
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn


#: control characters but tab and newline (C0, DEL, C1): from a file or a database they could move the
#: cursor, retitle or clear the terminal (an escape sequence in a run's name, a uri, an event file); and
#: the invisible marks that reorder or hide text (a config key holding U+202E, the right-to-left
#: override, printed a line that read backwards from there on)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline shown as an escape (``\\x1b``);
    free for text that has none (``str.isprintable``, most text: the TUI's runs table escapes every name)."""
    return text if text.isprintable() else _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``n`` and the noun it counts: ``1 file``, ``3 files``, ``2,048 files`` (``words``: an irregular plural)."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def listed(items: Iterable[object], shown: int = 3) -> str:
    """The first ``shown`` items, comma-separated, and how many more: ``a, b, c and 4 more``."""
    names = [str(item) for item in items]
    rest = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {rest} more" if rest > 0 else "")


def say(line: str) -> None:
    """One line on stderr, flushed (a log file tailed by the TUI sees it at once); nothing once its
    reader has left (:func:`stderr_gone`)."""
    try:
        print(printable(line), file=sys.stderr, flush=True)
    except OSError as e:  # EPIPE: a pipe's reader left; EIO: the terminal hung up
        if e.errno not in (errno.EPIPE, errno.EIO):
            raise
        stderr_gone()


def stderr_gone() -> None:
    """The reader of stderr left (``train … 2>&1 | tee log``, whose tee ended with its SSH session): what
    is said from now on goes nowhere, and the work goes on (a training was recorded failed, ``SystemExit:
    1``, at its next line). Its records are in the database; the TUI and ``runs`` show them."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stderr.fileno())
    finally:
        os.close(devnull)


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal now (one that hung up no longer tells: ask before)."""
    return sys.stderr is not None and sys.stderr.isatty()


def stdout_usable() -> bool:
    """Make stdout fit for a command's result: characters its encoding lacks (a run named with "—"
    on a Latin-1 locale) written as escapes, where they stopped ``runs`` with a UnicodeEncodeError.
    False when there is none (``>&-``): a result has nowhere to go."""
    if sys.stdout is None:
        return False
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        sys.stdout.reconfigure(errors="backslashreplace")
    return True


def out(line: str = "") -> None:
    """One line of a command's result on stdout."""
    print(printable(line), flush=True)


def out_text(text: str) -> None:
    """A command's result given whole (a file's text), on stdout as it is."""
    sys.stdout.write(text)
    sys.stdout.flush()


def reader_gone() -> None:
    """The reader of our output left (``spkemb-engine runs | head``): close stderr, so that nothing more is said
    (and Python's exit does not complain of the broken pipe)."""
    sys.stderr.close()


def stderr_console(file: IO[str] | None = None, **options: Any) -> Console:
    """A rich console on stderr, or on ``file`` (what progress bars and rich tables for people draw on),
    silent once stderr's reader has left: the work goes on (rich's own console exits, status 1)."""
    return _console_class()(file=file or sys.stderr, **options)


@functools.cache
def _console_class() -> type[Console]:
    from rich.console import Console

    class ReaderMayLeave(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            if self.file is sys.stderr:
                stderr_gone()

    return ReaderMayLeave


def draws(console: Console) -> bool:
    """Whether ``console`` is a terminal that draws bars and spinners: a dumb one (``TERM=dumb``: an Emacs
    shell, an SSH session that passed no TERM) draws nothing, and is given plain lines as a log is."""
    return console.is_terminal and not console.is_dumb_terminal


def while_loading(text: str) -> AbstractContextManager[object]:
    """A spinner saying ``text`` on stderr while it is a terminal, erased after (a log hears nothing; a dumb
    terminal the line): what a person waits for before the first line (torch's import: a minute on some
    network file systems)."""
    if not stderr_is_terminal():
        return contextlib.nullcontext()
    console = stderr_console()
    if draws(console):
        return console.status(text)
    say(text)
    return contextlib.nullcontext()


def stdout_console(*, min_width: int = 0, **options: Any) -> Console:
    """A rich console on stdout (a command's table as its result), at least ``min_width`` columns wide."""
    from rich.console import Console

    console = Console(**options)
    return Console(width=min_width, **options) if console.width < min_width else console


def progress_bar(*columns: ProgressColumn | str, console: Console | None = None, live: bool | None = None,
                 transient: bool = True) -> Progress:
    """A rich progress bar on stderr: ``columns`` between the description and bar, and the ETA.

    Drawn only when ``live`` (default: stderr is a terminal that draws); in a log file it stays silent.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = console or stderr_console()
    live = draws(console) if live is None else live
    return Progress(*(columns or (TextColumn("{task.description}"), BarColumn())), TimeRemainingColumn(),
                    console=console, transient=transient, disable=not live)
