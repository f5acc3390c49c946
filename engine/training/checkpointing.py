"""A training run's checkpoints, on disk and in its record, kept in step.

A checkpoint is committed in two steps: its file is renamed into place (and fsynced), then its
row is written; a reader that trusts rows (``validate``) never sees half a file. What follows
from that is here, and nowhere else in training:

- the untrained network is ``weights/0000.pt``, written once;
- a stop mid-epoch writes ``resume.pt``; the next end-of-epoch checkpoint supersedes it, and its
  row goes before its file, so that no row names a missing file;
- a run resumed after a process was killed between a rename and its row records that file
  (:meth:`RunCheckpoints.reconcile`), else ``validate`` would skip the epoch for ever;
- temporary files of a writer killed mid-save are swept at the start.

Only rank 0 touches files and rows; every rank waits for its write.
"""

from __future__ import annotations

from typing import Any

from engine.atomic import TMP_PREFIX
from engine.errors import CheckpointError
from engine.layout import TrainingDir
from engine.process import checkpoints as ckpt
from engine.process.distributed import World, agree, barrier
from engine.process.recording import Recorder
from engine.records import Checkpoint


class RunCheckpoints:
    """The checkpoints of the training run in ``trn``, written through ``recorder``'s rows."""

    def __init__(self, trn: TrainingDir, recorder: Recorder, world: World) -> None:
        self.trn, self.recorder, self.world = trn, recorder, world

    def sweep_stale(self) -> None:
        """Remove the temporary files a writer killed mid-save left."""
        if self.world.is_main:
            for tmp in self.trn.weights.glob(f"{TMP_PREFIX}*"):
                tmp.unlink(missing_ok=True)

    def has(self, epoch: int) -> bool:
        """Whether the end-of-epoch checkpoint of ``epoch`` is on disk, as every rank agrees.

        A collective, like :meth:`save`: every rank calls it, at the same point. Each rank looking
        for itself, one that looked after rank 0 had written the file would skip the save whose
        barrier rank 0 then waits in for ever; the vote is taken before any rank can write it.
        """
        return not agree(not self.trn.checkpoint(epoch).is_file(), self.world)

    def save(self, state: dict[str, Any], *, epoch: int, step: int, partial: bool) -> None:
        """Commit ``state``: at the end of ``epoch``, or mid-epoch as ``resume.pt`` (``partial``)."""
        if self.world.is_main:
            path = self.trn.resume if partial else self.trn.checkpoint(epoch)
            saved = ckpt.write_checkpoint(path, state)
            self.recorder.checkpoint(Checkpoint(epoch=epoch, step=step, path=path, partial=partial,
                                                sha256=saved.sha256))
            mid = self.trn.resume
            if not partial and mid.exists():
                # superseded by this later checkpoint: the row first, so no row names a missing file
                self.recorder.remove_checkpoint(path=mid)
                mid.unlink(missing_ok=True)
        barrier(self.world)

    def reconcile(self) -> None:
        """Record the epoch checkpoints renamed into place by a process killed before their row.

        Without a row, ``validate`` (which trusts rows) would skip the epoch for ever.
        """
        recorded = self.recorder.recorded_epochs() if self.world.is_main else None
        if recorded is None:  # another rank, or an event file that cannot look back
            return
        for epoch in self.trn.epochs():
            if epoch in recorded:
                continue
            path = self.trn.checkpoint(epoch)
            try:
                loaded = ckpt.read_checkpoint(path)
            except CheckpointError as e:
                self.recorder.say(f"train: warning: epoch {epoch} has a checkpoint file but no record, and "
                                  f"the file is unusable, so validate will skip epoch {epoch}: {e}")
                continue
            self.recorder.checkpoint(Checkpoint(epoch=epoch, step=loaded.payload["step"], path=path, partial=False,
                                                sha256=loaded.sha256))
