"""SIGTERM, SIGINT, SIGUSR1 (SLURM's warning before the time limit) and SIGHUP (the terminal that
started the command closed: an SSH session dropped) ask training to stop at the next step
boundary, never mid-step. A SIGHUP that ``nohup`` ignores stays ignored: the run outlives its
terminal, as asked.

Before the first step (listing, checking and indexing the data) there is no step boundary
to wait for: inside ``immediately()`` a signal raises ``Interrupted`` at once, so that a
stop takes effect within a second even in the middle of pyannote.database's parsing.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from engine.console import stderr_gone, stderr_is_terminal

#: the signals that ask a run to stop (SLURM's warning, SIGUSR1, and a terminal's hangup included)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP)


def ignore_stop_signals(_worker_id: int | None = None) -> None:
    """In a helper process (a DataLoader worker): leave stop signals to the main process.

    ``timeout``, ``kill -- -PGID``, SLURM and a terminal's Ctrl-C signal the whole process
    group. A worker killed by them makes the main process fail ("DataLoader worker ... is killed
    by signal") before it can checkpoint; ignoring them, the worker runs on until the main
    process, having checkpointed and recorded the stop, shuts it down.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


class Interrupted(KeyboardInterrupt):
    """A requested stop (SIGTERM/SIGINT) raised where there is nothing to finish first."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


class StopRequest:
    """Set by SIGTERM/SIGINT/SIGUSR1; the loop reads it between steps and checkpoints before leaving."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}
        self._raise = False
        #: whether stderr was a terminal when installed (a hung-up one can no longer tell)
        self._terminal = False

    def install(self) -> StopRequest:
        if self._previous:  # already installed (train installs it before indexing)
            return self
        self._terminal = stderr_is_terminal()
        for sig in STOP_SIGNALS:
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue  # nohup's: the run goes on when its terminal closes
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    @contextmanager
    def immediately(self) -> Iterator[None]:
        """Within the block, a stop request raises ``Interrupted`` at once (and on entry if one came)."""
        if self.requested:
            raise Interrupted(self.name)
        self._raise = True
        try:
            yield
        finally:
            self._raise = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            # a second Ctrl-C means "now": give the default behaviour back
            raise KeyboardInterrupt
        if signum == signal.SIGHUP and self._terminal:
            stderr_gone()  # its terminal hung up: writing there fails (EIO), and the stop must be recorded
        self.signal = signum
        if self._raise:
            self._raise = False
            raise Interrupted(self.name)

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""
