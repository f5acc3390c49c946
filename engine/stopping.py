"""SIGTERM, SIGINT and SIGUSR1 (SLURM's warning before the time limit) ask training to stop at
the next step boundary, never mid-step."""

from __future__ import annotations

import signal
from types import FrameType


class StopRequest:
    """Set by SIGTERM/SIGINT/SIGUSR1; the loop reads it between steps and checkpoints before leaving."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            # a second Ctrl-C means "now": give the default behaviour back
            raise KeyboardInterrupt
        self.signal = signum

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""
