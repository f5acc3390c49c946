"""Everything training reads from disk, resolved once before the first step.

The protocol is listed once, every file checked once with ``soundfile.info``, the
speech of every speaker indexed once and cached (``engine.data``); batches are then
drawn from that index by loader workers for the whole run (never a protocol re-scan
per batch), and later starts load the cached index.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from engine.config import Config
from engine.data.audio_checks import Problem
from engine.data.augment import build_augmentation
from engine.data.batch_loader import BatchLoader, make_loader
from engine.data.batches import Position, batches_per_epoch, check_per_fold, share_weight
from engine.data.file_checks import changed_problems
from engine.data.speech_index import SpeakerIndex, derive_index
from engine.data.speed import speed_vocabulary
from engine.data.table import IndexTable
from engine.data.training_index import IndexRequest, training_table
from engine.process.distributed import World
from engine.process.stopping import ignore_stop_signals
from engine.progress import Progress


@dataclass
class TrainingData:
    config: Config
    index: SpeakerIndex
    augment: Any
    seed: int
    world: World
    workers: int
    pin_memory: bool
    problems: list[Problem] = field(default_factory=list)
    #: files whose size or mtime changed since the cached index saw them (among ``problems``)
    changed: list[Problem] = field(default_factory=list)
    # the one loader of the run (persistent workers); it alone knows which batch comes next
    _loader: BatchLoader | None = None
    _iter: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def speakers(self) -> list[str]:
        """The training classes: the speakers, and their speed-perturbed copies (SpeedPerturb)."""
        aug = self.config.augmentation
        if aug is None or not aug.speeds:
            return self.index.speakers
        return speed_vocabulary(self.index.speakers, aug.speeds)

    @property
    def batches_per_epoch(self) -> int:
        t = self.config.task
        return batches_per_epoch(t.per_epoch, t.duration, t.per_fold, t.per_label)

    @property
    def share_weight(self) -> float:
        """The weight of this rank's mean loss under DDP (``batches.share_weight``)."""
        return share_weight(self.world.rank, self.world.size, self.config.task.batch_size)

    @property
    def position(self) -> Position:
        """The batch that comes next: completed epochs, batches of the next one done."""
        if self._loader is None:  # nothing drawn and no seek: the start of the sequence
            return Position(0, 0)
        return self._loader.upcoming

    def seek(self, at: Position) -> None:
        """Continue the batch sequence at ``at`` (a resume point), with a new endless loader."""
        self._loader = make_loader(self.index, self.config, workers=self.workers, seed=self.seed,
                                   rank=self.world.rank, world=self.world.size, epoch=at.epoch,
                                   start_batch=at.batch, epochs=None, augment=self.augment,
                                   pin_memory=self.pin_memory, worker_init=ignore_stop_signals)
        self._iter = iter(self._loader)

    def found(self) -> list[Problem]:
        """Files found unusable while reading the batches handed out since the last call."""
        return self._loader.take_found() if self._loader is not None else []

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's batches from ``position`` to the end of its epoch."""
        if self._loader is None:  # a run not resumed: from the first batch
            self.seek(Position(0, 0))
        assert self._loader is not None and self._iter is not None
        epoch = self._loader.upcoming.epoch
        # the loader moves to (epoch + 1, 0) as it hands over the epoch's last batch
        while self._loader.upcoming.epoch == epoch:
            yield next(self._iter)


def prepare_training_data(config: Config, protocol: str, subset: str, *, database: str | None,
                          strict: bool, seed: int, world: World, workers: int = 0,
                          pin_memory: bool = False, reindex: bool = False,
                          progress: Progress | None = None) -> TrainingData:
    """The training files' index (from the cache, else listed, checked and cached); the augmentation.

    Under torchrun the local rank 0 of each node builds a missing index, the other ranks wait
    for it; all of them then memory-map the same cached columns. Files whose size or mtime
    changed since the index saw them are named as problems (their chunks are drawn elsewhere
    where they are read; ``train --strict`` refuses them).
    """
    progress = progress or Progress(quiet=not world.is_main)
    request = IndexRequest(protocol=protocol, subset=subset, database=database, reindex=reindex,
                           builder=world.local_rank == 0)
    began = time.time()
    table = training_table(request, progress)
    index = derive_index(table, config.task.duration, label_min_duration=config.task.label_min_duration,
                         strict=strict)
    # before the untrained network's checkpoint is written: a rerun once per_fold is lowered would
    # otherwise be refused as a folder that holds checkpoints (--resume)
    check_per_fold(config.task.per_fold, len(index.speakers),
                   [p.problem for p in index.problems if p.kind == "speaker"])
    # a cached index is trusted for what it says of the files only while they stay as it saw them:
    # one stat each (vectorised against its columns) names those that changed since
    # (an index built just now stat'ed every file moments ago: nothing to look at again)
    built_now = table.info.get("built_at", 0) >= began
    changed = changed_problems(table) if world.is_main and not built_now else []
    speech = index.total_speech
    amount = f"{speech / 3600:,.1f} h" if speech >= 3600 else f"{speech:,.0f} s"
    progress.note(f"index: {len(index.speakers):,} speakers with {amount} of usable speech "
                  f"in {len(index.paths):,} files{_silent(table)}")
    augment = build_augmentation(config.augmentation, sample_rate=config.sample_rate, database=database)
    problems = list(index.problems) + changed + list(getattr(augment, "problems", None) or [])
    return TrainingData(config=config, index=index, augment=augment, seed=seed, world=world,
                        workers=workers, pin_memory=pin_memory, problems=problems, changed=changed)


def _silent(table: IndexTable) -> str:
    """The files no speaker speaks in, counted and one named: a file the annotation forgot gives no chunk
    and no error, so that a short RTTM would go unseen."""
    silent = table.silent_files()
    if not len(silent):
        return ""
    verb = "holds" if len(silent) == 1 else "hold"
    return (f"; {len(silent):,} of them {verb} no speech region, e.g. {table.uris[int(silent[0])]} (no turn in the "
            "annotation, or none inside annotated)")
