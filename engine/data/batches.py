"""Training batches: per_fold speakers × per_label chunks cropped at random from their speech.

The sampling is pyannote.audio 1.x's ``SpeechSegmentGenerator`` (embedding task): speakers are
visited in a shuffled order, pass after pass, ``per_fold`` at a time; for each of them
``per_label`` chunks of ``duration`` seconds are cropped at random from a speech region chosen
with probability proportional to its duration; regions shorter than a chunk are never used.
An epoch is ``per_epoch`` days of audio.

Unlike 1.x, batch ``k`` of epoch ``e`` is a pure function of ``(seed, e, k)`` (its random
generators are seeded with that tuple), so that a run resumed at any batch, with any number
of loader workers, and on any number of ranks, sees exactly the batches it would have seen.
A file found unusable when read (gone, cut short, rewritten since the index was built) is not
a worker's traceback: its chunk is drawn again (``SpeakerBatches.redraw``, seeded the same
way) and the problem travels with the batch to the main process, which warns and records it.
The worker processes that read them, and the resume point, are ``engine.data.batch_loader``'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.data.audio import num_samples, read_crop
from engine.data.audio_checks import Problem
from engine.data.speech_index import SpeakerIndex
from engine.data.speed import SpeedPerturb, speed_vocabulary
from engine.errors import AudioError, TrainingError

__all__ = ["Augment", "BatchPlan", "Position", "SpeakerBatches", "batches_per_epoch"]

SECONDS_PER_DAY = 24 * 60 * 60
#: chunks drawn again at the same speaker (then as many at any speaker) for a file unusable now
REDRAWS = 16

#: an augmentation: (waveform (samples,) float32, rng) -> waveform of the same shape
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def rank_share(rank: int, world: int, batch: int) -> slice:
    """Rank ``rank``'s rows of a batch of ``batch`` chunks split over ``world`` processes (uneven when
    ``world`` does not divide ``batch``: 8 chunks on 3 ranks are 2, 3 and 3)."""
    return slice(rank * batch // world, (rank + 1) * batch // world)


def share_weight(rank: int, world: int, batch: int) -> float:
    """What rank ``rank``'s mean loss is multiplied by before its backward pass: DDP averages the
    ranks' gradients, which weighs every rank alike, so a rank's mean is weighed by its share of
    the batch for the step to be the whole batch's mean loss (1.0 exactly for even shares)."""
    share = rank_share(rank, world, batch)
    return (share.stop - share.start) * world / batch


@dataclass(frozen=True)
class BatchPlan:
    """What one batch holds, before any audio is read (rows of the whole batch)."""

    labels: np.ndarray  # (batch,) int64, training class: speaker + n_speakers * speed index
    files: np.ndarray  # (batch,) int32, index into SpeakerIndex.paths
    starts: np.ndarray  # (batch,) float64, chunk start in seconds
    speeds: np.ndarray | None = None  # (batch,) int64, index into the speed factors


class Position(NamedTuple):
    """A place in the batch sequence: batch ``batch`` of 0-based ``epoch``.

    As a resume point it reads "``epoch`` epochs completed, ``batch`` batches of the next one
    done", which is the same pair: the batch that comes next.
    """

    epoch: int
    batch: int


def batches_per_epoch(per_epoch: float, duration: float, per_fold: int, per_label: int) -> int:
    """Batches in an epoch of ``per_epoch`` days of audio (pyannote.audio 1.x)."""
    return max(1, int(math.ceil(per_epoch * SECONDS_PER_DAY / (duration * per_fold * per_label))))


def check_per_fold(per_fold: int, speakers: int, skipped: Sequence[str] = ()) -> None:
    """Refuse batches of more distinct speakers than ``speakers`` can give (``skipped``: why each speaker
    left out was, said with the refusal: the warnings naming them come after it)."""
    if per_fold > speakers:
        why = f" ({len(skipped)} left out, e.g. {skipped[0]})" if skipped else ""
        raise TrainingError(f"task per_fold={per_fold} asks for more distinct speakers per batch "
                            f"than the {speakers} usable ones{why} — lower task per_fold to at most {speakers}")


class SpeakerBatches(Dataset):
    """Map-style dataset: item ``g`` is the global batch ``g = epoch * batches_per_epoch + k``.

    Each item is the (waveforms (share, samples) float32, labels (share,) int64) pair of this
    rank's share of the batch: rows ``rank * B // world`` to ``(rank + 1) * B // world`` of
    the batch of ``B = per_fold * per_label`` chunks, which is the same on every rank.

    Parameters
    ----------
    index : SpeakerIndex
        Speech of every training speaker (``build_index``).
    per_fold, per_label : int
        Speakers per batch, chunks per speaker.
    per_epoch : float
        Days of audio per epoch.
    sample_rate : int
        Sample rate of the waveforms.
    seed : int
        The batches are a function of (seed, epoch, batch) only.
    rank, world : int, optional
        This process's share of each batch under DistributedDataParallel.
    augment : callable, optional
        Applied to each chunk with a generator seeded by (seed, epoch, batch, row).
    speeds : sequence of float, optional
        Speed perturbation factors (``SpeedPerturb``): each chunk's factor is drawn with a
        generator seeded by (seed, 3, epoch, batch), and each factor's copy of a speaker is
        a class of its own (``speakers`` lists them all).
    """

    def __init__(self, index: SpeakerIndex, *, per_fold: int, per_label: int, per_epoch: float,
                 sample_rate: int, seed: int, rank: int = 0, world: int = 1,
                 augment: Augment | None = None, speeds: Sequence[float] = ()) -> None:
        n = len(index.speakers)
        check_per_fold(per_fold, n)
        if per_fold < 1 or per_label < 1:
            raise TrainingError("task per_fold and per_label must be at least 1")
        batch = per_fold * per_label
        if not 0 <= rank < world or world > batch:
            raise TrainingError(f"cannot split batches of {batch} chunks as rank {rank} of {world}")
        self.index = index
        self.per_fold, self.per_label = per_fold, per_label
        self.sample_rate, self.seed = sample_rate, seed
        self.rank, self.world = rank, world
        self.augment = augment
        self.speed = SpeedPerturb(speeds, sample_rate) if speeds else None
        self.batch_size = batch
        self.samples = num_samples(index.duration, sample_rate)
        self.batches_per_epoch = batches_per_epoch(per_epoch, index.duration, per_fold, per_label)
        self.share = rank_share(rank, world, batch)
        # batches per pass over the speaker list
        self._per_pass = int(math.ceil(n / per_fold))

    @property
    def speakers(self) -> list[str]:
        """The label vocabulary: label ``i`` is ``speakers[i]`` (speed-perturbed copies included)."""
        if self.speed is None:
            return self.index.speakers
        return speed_vocabulary(self.index.speakers, self.speed.factors)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def _fold(self, g: int) -> np.ndarray:
        # every speaker once per pass, in an order shuffled per pass; the last fold of a pass
        # is completed from the start of the same order (distinct, since per_fold <= speakers)
        n, pf = len(self.index.speakers), self.per_fold
        p, j = divmod(g, self._per_pass)
        order = np.random.default_rng([self.seed, 0, p]).permutation(n)
        fold = order[j * pf:(j + 1) * pf]
        if len(fold) < pf:
            fold = np.concatenate([fold, order[:pf - len(fold)]])
        return fold

    def plan(self, epoch: int, k: int) -> BatchPlan:
        """Speakers, files and chunk starts of batch ``k`` of ``epoch`` (the whole batch)."""
        ix = self.index
        g = epoch * self.batches_per_epoch + k
        labels = np.repeat(self._fold(g), self.per_label)
        speeds: np.ndarray | None = None
        needed: float | np.ndarray = ix.duration
        if self.speed is not None:  # its own generator: the other draws stay those of a run without it
            speeds = self.speed.draw(np.random.default_rng([self.seed, 3, epoch, k]), len(labels))
            needed = self.speed.input_seconds(speeds, self.samples)
        rng = np.random.default_rng([self.seed, 1, epoch, k])
        # a region with probability proportional to its duration (1.x's weighted random_segment)
        low = np.where(ix.offsets[labels] > 0, ix.cumulative[np.maximum(ix.offsets[labels] - 1, 0)], 0.0)
        high = ix.cumulative[ix.offsets[labels + 1] - 1]
        u = low + rng.random(len(labels)) * (high - low)
        rows = np.searchsorted(ix.cumulative, u, side="right")
        rows = np.clip(rows, ix.offsets[labels], ix.offsets[labels + 1] - 1)
        # then a chunk start uniformly inside it (1.x's random_subsegment); a sped-up chunk
        # reads more audio, so it has less room (none past the region's end when it fits)
        span = np.maximum(0.0, ix.seg_span[rows] + ix.duration - needed)
        starts = ix.seg_start[rows] + rng.random(len(labels)) * span
        if speeds is not None:
            labels = labels + len(ix.speakers) * speeds
        return BatchPlan(labels=labels.astype(np.int64), files=ix.seg_file[rows], starts=starts, speeds=speeds)

    @property
    def _speed(self) -> SpeedPerturb:
        """The speed perturbation, where a chunk has a speed: speeds are drawn only when it is on."""
        if self.speed is None:
            raise TrainingError("a chunk has a speed but speed perturbation is off")
        return self.speed

    def sample_plan(self, epoch: int, k: int) -> list[dict[str, Any]]:
        """This rank's chunks of batch ``k`` of ``epoch``: uri, path, speaker, start, duration."""
        plan = self.plan(epoch, k)
        ix = self.index
        vocabulary = self.speakers
        return [{"uri": ix.uris[f], "path": ix.paths[f], "speaker": vocabulary[int(s)],
                 "label": int(s), "start": float(t), "duration": ix.duration,
                 "speed": 1.0 if plan.speeds is None else self._speed.factors[int(plan.speeds[row])]}
                for row, s, f, t in zip(range(self.share.start, self.share.stop), plan.labels[self.share],
                                        plan.files[self.share], plan.starts[self.share], strict=True)]

    def batch(self, epoch: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """This rank's share of batch ``k`` of ``epoch`` as numpy arrays."""
        waveforms, labels, _ = self.checked_batch(epoch, k)
        return waveforms, labels

    def checked_batch(self, epoch: int, k: int) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
        """``batch``, and the files found unusable on the way (their chunks drawn again, ``redraw``)."""
        plan = self.plan(epoch, k)
        rows = range(self.share.start, self.share.stop)
        waveforms = np.empty((len(rows), self.samples), dtype=np.float32)
        labels = plan.labels[self.share].copy()
        problems: list[Problem] = []
        for i, row in enumerate(rows):
            speed = None if plan.speeds is None else int(plan.speeds[row])
            label, f, start = int(labels[i]), int(plan.files[row]), float(plan.starts[row])
            for attempt in range(1, 2 * REDRAWS + 2):
                try:
                    self._read(f, start, speed, waveforms[i])
                    break
                except AudioError as e:
                    problems.append(Problem(path=self.index.paths[f], problem=str(e)))
                if attempt > 2 * REDRAWS:  # nothing readable left to draw from: the run must stop
                    waveforms[i] = 0.0
                    problems.append(Problem(path=self.index.paths[f], fatal=True, problem=(
                        f"no readable chunk found for row {row} of batch {k} of epoch {epoch} after "
                        f"{attempt} tries: the training files changed since the index was built — check "
                        "the disk, then run train with --reindex")))
                    break
                label, f, start = self.redraw(epoch, k, row, attempt, label, speed)
            labels[i] = label
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, 2, epoch, k, row])
                waveforms[i] = self.augment(waveforms[i], rng)
        return waveforms, labels, problems

    def _read(self, f: int, start: float, speed: int | None, out: np.ndarray) -> None:
        path, files = self.index.paths[f], self.index.files
        indexed = files[f] if files is not None else None
        if speed is not None:
            self._speed.read(path, start, speed, out, indexed=indexed)
        else:
            read_crop(path, start, self.index.duration, self.sample_rate, out=out, indexed=indexed)

    def redraw(self, epoch: int, k: int, row: int, attempt: int, label: int,
               speed: int | None) -> tuple[int, int, float]:
        """Another chunk for ``row``, whose file could not be read: (label, file, start).

        A pure function of (seed, epoch, batch, row, attempt), so that a batch with an unusable
        file is the same batch in every worker and after a resume: ``REDRAWS`` tries at the
        same speaker (1.x's weighted region, uniform start), then at speakers drawn uniformly.
        """
        ix = self.index
        n = len(ix.speakers)
        rng = np.random.default_rng([self.seed, 4, epoch, k, row, attempt])
        s = label % n if attempt <= REDRAWS else int(rng.integers(n))
        lo, hi = int(ix.offsets[s]), int(ix.offsets[s + 1])
        low = ix.cumulative[lo - 1] if lo > 0 else 0.0
        u = low + rng.random() * (ix.cumulative[hi - 1] - low)
        r = min(max(int(np.searchsorted(ix.cumulative, u, side="right")), lo), hi - 1)
        needed = ix.duration if speed is None else float(self._speed.input_seconds(np.array([speed]), self.samples)[0])
        span = max(0.0, ix.seg_span[r] + ix.duration - needed)
        start = float(ix.seg_start[r] + rng.random() * span)
        return s + n * (speed or 0), int(ix.seg_file[r]), start

    def __getitem__(self, g: int) -> tuple[torch.Tensor, torch.Tensor, list[Problem]]:
        # the problems travel with the batch: a worker process cannot warn or record
        epoch, k = divmod(int(g), self.batches_per_epoch)
        waveforms, labels, problems = self.checked_batch(epoch, k)
        return torch.from_numpy(waveforms), torch.from_numpy(labels), problems
