"""``train --resume``: where the run continues, decided once before anything else runs.

The newest complete checkpoint of TRN_DIR (``resume.pt`` of a stopped run, or the last epoch's
file) and the position it holds: epoch, batch, step, the target and what the interrupted epoch
had done so far. The trainer loads its states; nothing else reads ``--resume``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.data.batches import Position
from engine.errors import TrainingError
from engine.process import checkpoints as ckpt


@dataclass(frozen=True)
class ResumePoint:
    """A checkpoint to continue from and the position in the batch sequence it holds."""

    path: Path
    saved: dict[str, Any]

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return int(self.saved["epoch"])

    @property
    def batch(self) -> int:
        """Batches of the next epoch already done (0 at an epoch's end)."""
        return int(self.saved["batch"])

    @property
    def position(self) -> Position:
        """The batch the resumed run draws first."""
        return Position(self.epoch, self.batch)

    @property
    def step(self) -> int:
        return int(self.saved["step"])

    @property
    def target(self) -> int | None:
        """The epoch the interrupted run was going to."""
        return self.saved.get("target")

    @property
    def carried(self) -> dict | None:
        """Loss sum, steps and seconds of the interrupted epoch before the checkpoint."""
        return self.saved.get("epoch_so_far") if self.batch else None


def resume_point(trn_dir: Path, device: torch.device | str = "cpu", *,
                 trust: ckpt.Trust | None = None) -> ResumePoint:
    """The newest complete checkpoint of ``trn_dir``, loaded (checked against its row by ``trust``).

    Raises
    ------
    TrainingError
        When TRN_DIR holds no checkpoint yet.
    CheckpointError
        When the newest one cannot be read, or changed since its row recorded it.
    """
    path = ckpt.latest_checkpoint(trn_dir)
    if path is None:
        raise TrainingError(f"--resume: {trn_dir} has no checkpoint yet; train without --resume")
    return ResumePoint(path, ckpt.load_checkpoint(path, map_location=device, trust=trust))
