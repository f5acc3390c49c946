"""Progress of the phases before the first step: counts, rate and ETA, on a terminal or in a log.

On a terminal a rich progress bar; otherwise (stderr is ``train.log`` under the TUI, or a
SLURM output file) a line when a phase starts, every ``LINE_EVERY`` seconds, and when it ends.
A ``beat`` callback receives ``(done, total)`` at most every ``BEAT_EVERY`` seconds: the run's
row in the database shows the same progress.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn

from engine.console import progress_bar

#: seconds between two progress lines in a log file, and between two database heartbeats
LINE_EVERY = 10.0
BEAT_EVERY = 2.0

#: (done, total) of the phase under way; (None, None) only says "alive"
Beat = Callable[[int | None, int | None], None]


def _eta(done: int, total: int | None, seconds: float) -> str:
    if not total or done <= 0 or done >= total:
        return ""
    left = (total - done) * seconds / done
    return f", ETA {int(left) // 60}:{int(left) % 60:02d}"


class Phase:
    """One phase (listing, checking…): ``advance(n)`` as work gets done."""

    def __init__(self, owner: IndexProgress, name: str, total: int | None, unit: str) -> None:
        self.owner, self.name, self.total, self.unit = owner, name, total, unit
        self.done = 0
        self.t0 = self._line_at = self._beat_at = time.monotonic()
        self.task = owner.bar.add_task(name, total=total) if owner.live else None

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.task is not None:
            self.owner.bar.update(self.task, completed=self.done)
        elif now - self._line_at >= LINE_EVERY:
            self._line_at = now
            self.owner.note(self.status(now))
        if self.owner.beat is not None and now - self._beat_at >= BEAT_EVERY:
            self._beat_at = now
            self.owner.beat(self.done, self.total)

    def status(self, now: float | None = None) -> str:
        seconds = (now or time.monotonic()) - self.t0
        rate = self.done / seconds if seconds > 0 else 0.0
        of = f"/{self.total:,}" if self.total is not None else ""
        return f"{self.name}: {self.done:,}{of} {self.unit} ({rate:,.0f} {self.unit}/s{_eta(self.done, self.total, seconds)})"

    def finish(self, summary: str = "") -> None:
        seconds = time.monotonic() - self.t0
        if self.task is not None:
            self.owner.bar.remove_task(self.task)
        extra = f", {summary}" if summary else ""
        rate = f" ({self.done / seconds:,.0f} {self.unit}/s)" if seconds > 0 and self.done else ""
        self.owner.note(f"{self.name}: {self.done:,} {self.unit} in {seconds:.1f} s{rate}{extra}")


class IndexProgress:
    """Where the phases before training report; silent when ``quiet`` (ranks other than 0)."""

    def __init__(self, *, quiet: bool = False, beat: Beat | None = None, file: IO[str] | None = None) -> None:
        self.console = Console(file=file or sys.stderr, highlight=False)
        self.quiet, self.beat = quiet, beat
        self.live = not quiet and self.console.is_terminal
        self.bar = progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TaskProgressColumn(), console=self.console, live=self.live)
        self.current: Phase | None = None
        self.activity = ""
        self._ticked = time.monotonic()

    @contextmanager
    def phase(self, name: str, total: int | None = None, unit: str = "files") -> Iterator[Phase]:
        """A phase that ends with a summary line (``phase.summary`` adds to it)."""
        phase = Phase(self, name, total, unit)
        phase.summary = ""  # type: ignore[attr-defined]
        self.current = phase
        if self.live:
            self.bar.start()
        elif not self.quiet:
            self.note(f"{name}: {'{:,} '.format(total) if total is not None else ''}{unit}…")
        try:
            yield phase
            phase.finish(phase.summary)  # type: ignore[attr-defined]
        except BaseException:
            self.activity = phase.status()
            raise
        finally:
            if self.live:
                self.bar.stop()
            self.current = None

    def tick(self) -> None:
        """Say the process is alive while it waits (for another builder): a heartbeat when due."""
        now = time.monotonic()
        if self.beat is not None and now - self._ticked >= BEAT_EVERY:
            self._ticked = now
            self.beat(None, None)

    def where(self) -> str:
        """The phase under way, with its counts (for a stop's reason)."""
        return self.current.status() if self.current is not None else self.activity

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, soft_wrap=True)
