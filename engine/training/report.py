"""What training shows and records of its progress: step rows, chunks/s, a progress bar.

Losses stay on the device until a row batch is taken, so a GPU run synchronises
once per logging interval rather than once per step.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

from engine.console import progress_bar
from engine.data.audio import Problem
from engine.process.distributed import World
from engine.records import EpochSummary


#: seconds between two progress lines when stderr is not a terminal (a log file)
NOTE_EVERY = 30.0


def report_skipped(problems: Sequence[Problem], world: World, what: str) -> None:
    """One warning line per skipped file or speaker, then their count, on stderr (rank 0).

    A run launched by the TUI writes stderr to ``TRN_DIR/train.log``: the lines land there too.
    Long paths are never wrapped and never read as rich markup (``[...]`` in a file name).
    """
    if not world.is_main or not problems:
        return
    console = Console(file=sys.stderr)
    for p in problems:
        where = "" if p.path in p.problem else f"{p.path}: "
        console.print(f"train: warning: {where}{p.problem}", markup=False, highlight=False, soft_wrap=True)
    files = sum(p.kind == "file" for p in problems)
    speakers = len(problems) - files
    console.print(f"train: warning: skipped {files} unusable file(s) and {speakers} speaker(s) while preparing {what} "
                  "(listed above, and in the run's data problems); --strict stops at the first instead",
                  markup=False, highlight=False, soft_wrap=True)


class TrainingReport:
    def __init__(self, world: World, target: int, batches_per_epoch: int, batch_size: int) -> None:
        self.world, self.target = world, target
        self.batches_per_epoch, self.batch_size = batches_per_epoch, batch_size
        self.console = Console(file=sys.stderr)
        self.live = world.is_main and self.console.is_terminal
        self.progress = progress_bar(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[target]}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[speed]:.0f} chunks/s"),
            console=self.console, live=self.live, transient=False)
        self.task = self.progress.add_task("train", total=batches_per_epoch, epoch=0, target=target,
                                           loss=float("nan"), speed=0.0)
        self._pending: list[tuple[int, int, torch.Tensor, float, float | None]] = []
        self._last = time.monotonic()
        self._batch = 0
        self._noted = time.monotonic()

    def __enter__(self) -> TrainingReport:
        self.progress.start()
        if not self.live:
            self.note(f"train: up to epoch {self.target}, {self.batches_per_epoch} batches of "
                      f"{self.batch_size * self.world.size} chunks per epoch")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start_epoch(self, epoch: int, start_batch: int, carried: dict | None = None) -> None:
        """Start (or, with ``carried`` from :meth:`so_far` of a stopped run, continue) an epoch."""
        self.epoch, self._t0 = epoch, time.monotonic()
        carried = carried or {}
        # a resumed epoch's summary covers its steps before the stop too, not only those after
        self._loss_sum, self._steps = float(carried.get("loss_sum", 0.0)), int(carried.get("steps", 0))
        self._earlier_seconds, self._lr = float(carried.get("seconds", 0.0)), 0.0
        self.progress.update(self.task, completed=start_batch, epoch=epoch)
        self._last = self._noted = time.monotonic()
        self._batch = start_batch

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
        speed = len(self._pending) * self.batch_size * self.world.size / max(now - self._last, 1e-9)
        wall = time.time()
        rows = [{"step": step, "epoch": epoch, "loss": loss, "lr": lr, "margin": margin,
                 "chunks_per_s": speed, "time": wall}
                for (epoch, step, _, lr, margin), loss in zip(self._pending, losses)]
        self._loss_sum += sum(losses)
        self._steps += len(rows)
        self._lr = rows[-1]["lr"]
        self._pending.clear()
        self._last = now
        self.progress.update(self.task, advance=len(rows), loss=rows[-1]["loss"], speed=speed)
        self._batch += len(rows)
        if not self.live and now - self._noted >= NOTE_EVERY:
            # no progress bar in a log file (the TUI's log panel): a line now and then instead
            self._noted = now
            self.note(f"epoch {self.epoch}/{self.target}  batch {self._batch}/{self.batches_per_epoch}  "
                      f"loss {rows[-1]['loss']:.4f}  {speed:.0f} chunks/s")
        return rows

    def so_far(self) -> dict:
        """The current epoch's loss sum, steps and seconds, for a mid-epoch checkpoint."""
        return {"loss_sum": self._loss_sum, "steps": self._steps,
                "seconds": self._earlier_seconds + time.monotonic() - self._t0}

    def end_epoch(self) -> EpochSummary:
        seconds = self._earlier_seconds + time.monotonic() - self._t0
        summary = EpochSummary(epoch=self.epoch, loss=self._loss_sum / max(self._steps, 1), lr=self._lr,
                               chunks_per_s=self._steps * self.batch_size * self.world.size / max(seconds, 1e-9),
                               seconds=seconds)
        if self.world.is_main and not self.live:
            self.note(f"epoch {self.epoch}/{self.target}  loss {summary.loss:.4f}  lr {summary.lr:.4g}  "
                      f"{summary.chunks_per_s:.0f} chunks/s  {summary.seconds:.1f} s")
        return summary

    def note(self, text: str) -> None:
        if self.world.is_main:
            self.console.print(text, highlight=False)
