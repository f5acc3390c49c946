"""The loader of the training batches: ``SpeakerBatches`` read by worker processes, from a resume point on.

``make_loader`` builds the batches of a config's task (``engine.data.batches``) and the
``BatchLoader`` that iterates them; the loader is where a run stands in the batch sequence
(``upcoming``, the resume point). Which chunks a batch holds is decided in ``batches.py`` alone:
a pure function of (seed, epoch, batch), whatever the workers and ranks.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from engine.data.audio_checks import Problem
from engine.data.batches import Augment, Position, SpeakerBatches
from engine.data.speech_index import SpeakerIndex, build_index
from engine.errors import TrainingError

__all__ = ["BatchLoader", "make_loader"]


class _Endless:
    """Global batch numbers from ``first`` on, afresh at every iteration (like a range)."""

    def __init__(self, first: int) -> None:
        self.first = first

    def __iter__(self) -> Iterator[int]:
        return itertools.count(self.first)


def _worker_init(worker_id: int, then: Callable[[int], None] | None = None) -> None:
    # resampling is the only torch work in a worker: one thread each, the cores are the workers'
    torch.set_num_threads(1)
    if then is not None:  # the caller's own set-up (training: leave stop signals to the main process)
        then(worker_id)


class BatchLoader:
    """Iterates this rank's batches from (epoch, start_batch) on, with worker processes.

    Yields ``(waveforms (share, samples) float32, labels (share,) int64)`` tensors. The loader
    is where a run stands in the batch sequence: ``upcoming`` is the batch it yields next (the
    resume point), ``position`` the one it yielded last; ``make_loader(..., epoch=e,
    start_batch=k)`` with ``(e, k) = upcoming`` goes on exactly there.
    """

    def __init__(self, dataset: SpeakerBatches, *, epoch: int, start_batch: int,
                 epochs: int | None, workers: int, pin_memory: bool, prefetch: int,
                 worker_init: Callable[[int], None] | None = None) -> None:
        bpe = dataset.batches_per_epoch
        if not 0 <= start_batch < bpe:
            raise TrainingError(f"resume batch {start_batch} is outside epoch of {bpe} batches")
        self.dataset = dataset
        self.first = epoch * bpe + start_batch
        self.stop = None if epochs is None else (epoch + epochs) * bpe
        # the one cursor: the global number of the next batch to yield (its pair is ``upcoming``)
        self._next = self.first
        self.found: list[Problem] = []
        sampler: Iterable[int] = (_Endless(self.first) if self.stop is None
                                  else range(self.first, self.stop))
        self.loader = DataLoader(
            dataset, batch_size=None, sampler=sampler, num_workers=workers,
            persistent_workers=workers > 0, prefetch_factor=prefetch if workers > 0 else None,
            pin_memory=pin_memory,
            worker_init_fn=functools.partial(_worker_init, then=worker_init) if workers > 0 else None)

    @property
    def speakers(self) -> list[str]:
        """The label vocabulary (sorted speaker labels)."""
        return self.dataset.speakers

    @property
    def batches_per_epoch(self) -> int:
        """Batches in one epoch."""
        return self.dataset.batches_per_epoch

    @property
    def problems(self) -> list[Problem]:
        """Files and speakers left out when the index was built."""
        return self.dataset.index.problems

    @property
    def upcoming(self) -> Position:
        """The batch yielded next: where a run stopped now would resume."""
        return Position(*divmod(self._next, self.dataset.batches_per_epoch))

    @property
    def position(self) -> Position | None:
        """The batch yielded last; None before the first."""
        if self._next == self.first:
            return None
        return Position(*divmod(self._next - 1, self.dataset.batches_per_epoch))

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("an endless loader (epochs=None) has no length")
        return self.stop - self.first

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self._next = self.first  # every iteration starts over, as the sampler does
        # made now, not at the first batch: making it draws the DataLoader's base seed from torch's
        # global RNG, which a resumed run restores after ``iter`` (a network that draws while training,
        # the filterbanks' dither, would otherwise go on one draw off the uninterrupted run)
        return self._yield(iter(self.loader))

    def _yield(self, batches: Iterator[Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for waveforms, labels, problems in batches:
            # counted as it leaves: batches the workers prepared ahead are not yet the run's
            self._next += 1
            self.found.extend(problems)
            yield waveforms, labels

    def take_found(self) -> list[Problem]:
        """Files found unusable while reading the batches yielded since the last call (repeats
        included: each chunk that met one); their chunks were drawn again elsewhere."""
        found, self.found = self.found, []
        return found

    def state_dict(self) -> dict[str, int]:
        """Where to resume: the (epoch, batch) after the last one yielded, and the seed."""
        epoch, k = self.upcoming
        return {"epoch": epoch, "batch": k, "seed": self.dataset.seed}


def make_loader(files: Sequence[Any] | SpeakerIndex, cfg: Any, *, workers: int, seed: int,
                rank: int = 0, world: int = 1, start_batch: int = 0, epoch: int = 0,
                epochs: int | None = 1, augment: Augment | None = None, pin_memory: bool = False,
                strict: bool = False, prefetch: int = 4,
                worker_init: Callable[[int], None] | None = None) -> BatchLoader:
    """Training batches of a config's task, ready to iterate.

    Parameters
    ----------
    files : sequence of ProtocolFile, or SpeakerIndex
        The training subset's files, or an index already built from them (``build_index``).
    cfg : engine.config.Config
        Uses ``task`` (duration, per_fold, per_label, per_epoch, label_min_duration),
        ``feature_extraction.sample_rate`` and ``augmentation.speeds`` (SpeedPerturb).
    workers : int
        Loader worker processes (0: load in this process).
    seed : int
        Batches are a function of (seed, epoch, batch) only.
    rank, world : int, optional
        This process's share of each batch under DistributedDataParallel.
    start_batch, epoch : int, optional
        First batch to yield (resume point, ``BatchLoader.state_dict()``).
    epochs : int or None, optional
        Epochs to cover from ``epoch`` (the first one from ``start_batch``); None: endless.
    augment : callable, optional
        Per-chunk augmentation (``engine.data.augment``).
    pin_memory : bool, optional
        Pin batches for faster host-to-GPU copies.
    strict : bool, optional
        Unreadable files and too-short speakers are fatal instead of reported.
    prefetch : int, optional
        Batches prepared ahead by each worker.
    worker_init : callable, optional
        Run in each worker process as it starts, with its id (after the loader's own set-up).

    Returns
    -------
    BatchLoader
    """
    task = cfg.task
    if isinstance(files, SpeakerIndex):
        index = files
    else:
        index = build_index(files, task.duration, label_min_duration=task.label_min_duration,
                            strict=strict)
    aug = cfg.augmentation
    dataset = SpeakerBatches(index, per_fold=task.per_fold, per_label=task.per_label,
                             per_epoch=task.per_epoch, sample_rate=cfg.feature_extraction.sample_rate,
                             seed=seed, rank=rank, world=world, augment=augment,
                             speeds=aug.speeds if aug is not None else ())
    return BatchLoader(dataset, epoch=epoch, start_batch=start_batch, epochs=epochs,
                       workers=workers, pin_memory=pin_memory, prefetch=prefetch, worker_init=worker_init)
