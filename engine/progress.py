"""Progress of long work, the one way every command shows it: counts, rate and ETA.

A command's work is a sequence of phases (listing and checking files before the first step,
an epoch's batches, embedding a trial list, extracting a subset). On a terminal each phase is a
rich progress bar (built by ``engine.console.progress_bar``); otherwise (stderr is ``train.log``
under the TUI, or a SLURM output file) a line when a phase starts, every ``LINE_EVERY`` seconds,
and when it ends. A ``beat`` callback receives ``(done, total)`` at most every ``BEAT_EVERY``
seconds: the run's row in the database shows the same progress (``engine.process.recording``
passes its heartbeat).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from rich.progress import BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn

from engine.console import draws, progress_bar, stderr_console

#: seconds between two progress lines in a log file, and between two database heartbeats
LINE_EVERY = 10.0
BEAT_EVERY = 2.0
#: seconds in a year: an ETA beyond it is flagged, not counted in minutes
YEAR = 365 * 24 * 3600

#: (done, total) of the phase under way; (None, None) only says "alive"
Beat = Callable[[float | None, float | None], None]


def _eta(done: float, total: float | None, seconds: float) -> str:
    if not total or done <= 0 or done >= total:
        return ""
    left = (total - done) * seconds / done
    if left >= YEAR:  # a size no one meant (an epoch of per_epoch days far beyond the data): said so
        return f", ETA {left / YEAR:,.0f} years (check the config's per_epoch)"
    return f", ETA {int(left) // 60}:{int(left) % 60:02d}"


class Phase:
    """One phase (listing, checking, an epoch…): ``advance(n)`` as work gets done.

    ``detail`` is a few words on how it goes (``loss 1.2345  480 chunks/s``), shown beside the
    counts.
    """

    def __init__(self, owner: Progress, name: str, total: float | None, unit: str, done: float = 0) -> None:
        self.owner, self.name, self.total, self.unit = owner, name, total, unit
        self.done, self.detail, self.summary = done, "", ""
        self.t0 = self._line_at = self._beat_at = owner.clock()
        self._from = done
        #: (time, done) of the last line: rates and ETAs are those since it, not since the start, whose
        #: first steps (workers starting, a cache warming) would hold them down for the whole phase
        self._mark = (self.t0, done)
        # rich annotates add_task's completed as an int; its Task keeps (and update takes) a float
        self.task = owner.bar.add_task(name, total=total, completed=done, detail="") if owner.live else None  # type: ignore[arg-type]

    def advance(self, n: float = 1, detail: str | None = None) -> None:
        self.done += n
        if detail is not None:
            self.detail = detail
        now = self.owner.clock()
        if self.task is not None:
            self.owner.bar.update(self.task, completed=self.done, detail=self.detail)
        elif now - self._line_at >= LINE_EVERY:
            self._line_at = now
            self.owner.note(self.status(now))
            self._mark = (now, self.done)
        if self.owner.beat is not None and now - self._beat_at >= BEAT_EVERY:
            self._beat_at = now
            self.owner.beat(self.done, self.total)

    def reach(self, done: float, total: float | None = None) -> None:
        """Advance to ``done`` of ``total`` (work that reports its counts rather than its steps)."""
        if total is not None:
            self.total = total
            if self.task is not None:
                self.owner.bar.update(self.task, total=total)
        self.advance(done - self.done)

    def status(self, now: float | None = None) -> str:
        now = now or self.owner.clock()
        # a window of a tenth of a line's interval at least (a second): not a rate of two steps
        since, before = self._mark if now - self._mark[0] >= LINE_EVERY / 10 else (self.t0, self._from)
        seconds = now - since
        rate = (self.done - before) / seconds if seconds > 0 else 0.0
        of = f"/{self.total:,.0f}" if self.total is not None else ""
        eta = _eta(self.done - before, None if self.total is None else self.total - before, seconds)
        detail = f"  {self.detail}" if self.detail else ""
        return f"{self.name}: {self.done:,.0f}{of} {self.unit} ({per_second(rate)} {self.unit}/s{eta}){detail}"

    def finish(self, said: bool = True) -> None:
        """The phase is over: its bar goes, and (``said``) a line says what it did."""
        seconds = self.owner.clock() - self.t0
        if self.task is not None:
            self.owner.bar.remove_task(self.task)
        if not said:
            return
        done = self.done - self._from
        extra = f", {self.summary}" if self.summary else ""
        rate = f" ({per_second(done / seconds)} {self.unit}/s)" if seconds > 0 and done else ""
        self.owner.note(f"{self.name}: {done:,.0f} {self.unit} in {seconds:.1f} s{rate}{extra}")


def per_second(rate: float) -> str:
    """A rate as people read it: whole numbers from 10 up, two significant digits below (``0.25``, not ``0``)."""
    return f"{rate:,.0f}" if rate >= 10 or rate == 0 else f"{rate:.2g}"


class Progress:
    """Where a command's phases report; silent when ``quiet`` (ranks other than 0)."""

    def __init__(self, *, quiet: bool = False, beat: Beat | None = None, file: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = stderr_console(file, highlight=False)
        self.quiet, self.beat, self.clock = quiet, beat, clock
        self.live = not quiet and draws(self.console)
        self.bar = progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TaskProgressColumn(), TextColumn("{task.fields[detail]}"),
                                console=self.console, live=self.live)
        self.current: Phase | None = None
        self.activity = ""
        self._ticked = clock()

    def open(self, name: str, total: float | None = None, unit: str = "files", *, done: float = 0,
             opening: bool = True) -> Phase:
        """Start a phase from ``done`` (a resumed epoch's batches); :meth:`close` ends it. Without
        ``opening``, a log hears of it only once it has lasted ``LINE_EVERY`` (a check that is
        usually quick, before a refusal that must be the only line)."""
        phase = Phase(self, name, total, unit, done)
        self.current = phase
        if self.live:
            self.bar.start()
        elif not self.quiet and opening:
            self.note(f"{name}: {f'{total:,.0f} ' if total is not None else ''}{unit}…")
        return phase

    def close(self, phase: Phase, said: bool = True) -> None:
        """End ``phase``: with ``said``, a line of what it did (``phase.summary`` adds to it)."""
        phase.finish(said)
        if self.live:
            self.bar.stop()
        self.current = None

    @contextmanager
    def phase(self, name: str, total: float | None = None, unit: str = "files", *,
              said: bool = True, opening: bool = True) -> Iterator[Phase]:
        """A phase for the length of a block; a stop or an error leaves its counts in :meth:`where`."""
        phase = self.open(name, total, unit, opening=opening)
        try:
            yield phase
        except BaseException:
            self.activity = phase.status()
            self.close(phase, said=False)
            raise
        self.close(phase, said)

    def tick(self) -> None:
        """Say the process is alive while it waits (for another builder): a heartbeat when due."""
        now = self.clock()
        if self.beat is not None and now - self._ticked >= BEAT_EVERY:
            self._ticked = now
            self.beat(None, None)

    def where(self) -> str:
        """The phase under way, with its counts (for a stop's reason)."""
        return self.current.status() if self.current is not None else self.activity

    def note(self, text: str) -> None:
        """A line for the person watching; never wrapped, never read as markup (``[...]`` in a path)."""
        if not self.quiet:
            self.console.print(text, soft_wrap=True, markup=False)
