"""The arithmetic of training progress: step rows, chunks/s, an epoch's mean loss.

Losses stay on the device until a row batch is taken, so a GPU run synchronises once per
logging interval rather than once per step. What the rows and summaries become (database rows,
a progress bar, log lines) is the recorder's business (``engine.process.recording``).
"""

from __future__ import annotations

import time

import torch

from engine.records import EpochSummary


class EpochMeter:
    """Counts one rank's steps of the current epoch; ``take_rows`` hands them over in batches."""

    def __init__(self, chunks_per_step: int) -> None:
        self.chunks_per_step = chunks_per_step
        self._pending: list[tuple[int, int, torch.Tensor, float, float | None]] = []
        self._last = time.monotonic()
        self.start_epoch(0)

    def start_epoch(self, epoch: int, epoch_so_far: dict | None = None) -> None:
        """Start (or, with ``epoch_so_far`` of a stopped run, continue) an epoch."""
        self.epoch, self._t0 = epoch, time.monotonic()
        so_far = epoch_so_far or {}
        # a resumed epoch's summary covers its steps before the stop too, not only those after
        self._loss_sum, self._steps = float(so_far.get("loss_sum", 0.0)), int(so_far.get("steps", 0))
        self._earlier_seconds, self._lr = float(so_far.get("seconds", 0.0)), 0.0
        self._last = time.monotonic()

    def add(self, epoch: int, step: int, loss: torch.Tensor, lr: float, margin: float | None = None) -> None:
        self._pending.append((epoch, step, loss, lr, margin))

    def due(self, interval: float) -> bool:
        return time.monotonic() - self._last >= interval

    def take_rows(self) -> list[dict]:
        """The pending steps as database rows (one device sync for all of them)."""
        if not self._pending:
            return []
        now = time.monotonic()
        losses = torch.stack([p[2] for p in self._pending]).float().cpu().tolist()
        speed = len(self._pending) * self.chunks_per_step / max(now - self._last, 1e-9)
        wall = time.time()
        rows = [{"step": step, "epoch": epoch, "loss": loss, "lr": lr, "margin": margin,
                 "chunks_per_s": speed, "time": wall}
                for (epoch, step, _, lr, margin), loss in zip(self._pending, losses, strict=True)]
        self._loss_sum += sum(losses)
        self._steps += len(rows)
        self._lr = rows[-1]["lr"]
        self._pending.clear()
        self._last = now
        return rows

    def epoch_so_far(self) -> dict:
        """The current epoch's loss sum, steps and seconds, for a mid-epoch checkpoint."""
        return {"loss_sum": self._loss_sum, "steps": self._steps,
                "seconds": self._earlier_seconds + time.monotonic() - self._t0}

    def end_epoch(self) -> EpochSummary:
        seconds = self._earlier_seconds + time.monotonic() - self._t0
        return EpochSummary(epoch=self.epoch, loss=self._loss_sum / max(self._steps, 1), lr=self._lr,
                            chunks_per_s=self._steps * self.chunks_per_step / max(seconds, 1e-9), seconds=seconds)
