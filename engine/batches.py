"""Training batches: per_fold speakers × per_label chunks cropped at random from their speech.

The sampling is pyannote.audio 1.x's ``SpeechSegmentGenerator`` (embedding task): speakers are
visited in a shuffled order, pass after pass, ``per_fold`` at a time; for each of them
``per_label`` chunks of ``duration`` seconds are cropped at random from a speech region chosen
with probability proportional to its duration; regions shorter than a chunk are never used.
An epoch is ``per_epoch`` days of audio.

Unlike 1.x, batch ``k`` of epoch ``e`` is a pure function of ``(seed, e, k)`` (its random
generators are seeded with that tuple), so that a run resumed at any batch, with any number
of loader workers, and on any number of ranks, sees exactly the batches it would have seen.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from engine.audio import Problem, audio_info, check_files, num_samples, read_crop
from engine.errors import AudioError, TrainingError
from engine.protocols import speech_intervals

SECONDS_PER_DAY = 24 * 60 * 60

#: an augmentation: (waveform (samples,) float32, rng) -> waveform of the same shape
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass
class SpeakerIndex:
    """Where each training speaker speaks: computed once from the protocol's files.

    Segments of all speakers are stored flat, speaker after speaker; speaker ``s`` owns rows
    ``offsets[s]:offsets[s + 1]``. ``cumulative`` is the running sum of segment durations,
    so that drawing a segment with probability proportional to its duration is one
    ``searchsorted``.
    """

    duration: float
    speakers: list[str]
    paths: list[str]
    uris: list[str]
    offsets: np.ndarray  # (speakers + 1,) int64
    seg_file: np.ndarray  # (segments,) int32, index into paths
    seg_start: np.ndarray  # (segments,) float64, seconds
    seg_span: np.ndarray  # (segments,) float64, room for a chunk start: duration - chunk duration
    cumulative: np.ndarray  # (segments,) float64
    speech: np.ndarray  # (speakers,) float64, usable seconds of each speaker
    problems: list[Problem] = field(default_factory=list)

    @property
    def total_speech(self) -> float:
        """Seconds of usable speech of all speakers."""
        return float(self.speech.sum())


def build_index(files: Iterable[Any], duration: float, *, label_min_duration: float = 0.0,
                strict: bool = False) -> SpeakerIndex:
    """Gather every speaker's speech regions long enough for one chunk.

    Parameters
    ----------
    files : iterable of ProtocolFile
        Training files with ``uri``, ``audio``, ``annotation`` and ``annotated``.
    duration : float
        Chunk duration in seconds; shorter regions are skipped.
    label_min_duration : float, optional
        Speakers with less usable speech than this are left out (pyannote.audio 1.x).
    strict : bool, optional
        Raise on the first unreadable file or speaker without a usable region instead of
        reporting it and going on.

    Returns
    -------
    SpeakerIndex
        With ``problems``: every skipped file (named by path) and speaker (named by label).

    Raises
    ------
    AudioError
        With ``strict``, on an unreadable file.
    TrainingError
        With ``strict``, on a speaker without speech enough for a chunk; always when no
        speaker is left.
    """
    paths: list[str] = []
    uris: list[str] = []
    problems: list[Problem] = []
    # speaker -> list of (file index, start, end); and all its speech, for the reports
    usable: dict[str, list[tuple[int, float, float]]] = {}
    heard: dict[str, list[float]] = {}
    where: dict[str, str] = {}
    files = list(files)
    audio = [str(file["audio"]) for file in files]
    # every file checked once, before anything is indexed (soundfile.info in threads: on a
    # network filesystem the latency of a million opens dominates)
    bad = {p.path: p for p in check_files(audio)}
    if strict and bad:
        first = next(iter(bad.values()))
        raise AudioError(first.problem, path=first.path)
    problems.extend(bad.values())
    for file, path in zip(files, audio):
        if path in bad:
            continue
        extent = audio_info(path).duration
        f = len(paths)
        paths.append(path)
        uris.append(str(file["uri"]))
        for label, intervals in speech_intervals(file).items():
            where.setdefault(label, path)
            spoken = heard.setdefault(label, [])
            regions = usable.setdefault(label, [])
            for start, end in intervals:
                start, end = max(0.0, start), min(extent, end)
                if end <= start:
                    continue
                spoken.append(end - start)
                if end - start >= duration:
                    regions.append((f, start, end))

    speakers: list[str] = []
    for label in sorted(usable):
        regions = usable[label]
        total = sum(end - start for _, start, end in regions)
        if not regions:
            longest = max(heard[label], default=0.0)
            message = (f"speaker {label!r} has no speech region of at least {duration:g} s "
                       f"(longest {longest:.2f} s, {sum(heard[label]):.2f} s in all): skipped")
            if strict:
                raise TrainingError(message + " — lower task duration, or drop the speaker "
                                    "from the protocol (or train without --strict)")
            problems.append(Problem(path=where[label], problem=message))
        elif total < label_min_duration:
            problems.append(Problem(path=where[label], problem=(
                f"speaker {label!r} has {total:.2f} s of usable speech, less than "
                f"label_min_duration={label_min_duration:g} s: skipped")))
        else:
            speakers.append(label)
    if not speakers:
        raise TrainingError(f"no speaker has a speech region of at least {duration:g} s "
                            f"in {len(paths)} readable file(s) — check the protocol's annotation "
                            f"and annotated, or lower task duration")

    offsets = np.zeros(len(speakers) + 1, dtype=np.int64)
    rows: list[tuple[int, float, float]] = []
    for s, label in enumerate(speakers):
        rows.extend(usable[label])
        offsets[s + 1] = len(rows)
    table = np.array(rows, dtype=np.float64)
    lengths = table[:, 2] - table[:, 1]
    speech = np.array([lengths[offsets[s]:offsets[s + 1]].sum() for s in range(len(speakers))])
    return SpeakerIndex(
        duration=duration, speakers=speakers, paths=paths, uris=uris, offsets=offsets,
        seg_file=table[:, 0].astype(np.int32), seg_start=table[:, 1],
        seg_span=np.maximum(0.0, lengths - duration), cumulative=np.cumsum(lengths),
        speech=speech, problems=problems)


@dataclass(frozen=True)
class BatchPlan:
    """What one batch holds, before any audio is read (rows of the whole batch)."""

    labels: np.ndarray  # (batch,) int64, index into SpeakerIndex.speakers
    files: np.ndarray  # (batch,) int32, index into SpeakerIndex.paths
    starts: np.ndarray  # (batch,) float64, chunk start in seconds


def batches_per_epoch(per_epoch: float, duration: float, per_fold: int, per_label: int) -> int:
    """Batches in an epoch of ``per_epoch`` days of audio (pyannote.audio 1.x)."""
    return max(1, int(math.ceil(per_epoch * SECONDS_PER_DAY / (duration * per_fold * per_label))))


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
    """

    def __init__(self, index: SpeakerIndex, *, per_fold: int, per_label: int, per_epoch: float,
                 sample_rate: int, seed: int, rank: int = 0, world: int = 1,
                 augment: Augment | None = None) -> None:
        n = len(index.speakers)
        if per_fold > n:
            raise TrainingError(f"task per_fold={per_fold} asks for more distinct speakers per batch "
                                f"than the {n} usable ones — lower task per_fold to at most {n}")
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
        self.batch_size = batch
        self.samples = num_samples(index.duration, sample_rate)
        self.batches_per_epoch = batches_per_epoch(per_epoch, index.duration, per_fold, per_label)
        self.share = slice(rank * batch // world, (rank + 1) * batch // world)
        # batches per pass over the speaker list
        self._per_pass = int(math.ceil(n / per_fold))

    @property
    def speakers(self) -> list[str]:
        """The label vocabulary: label ``i`` is ``speakers[i]``."""
        return self.index.speakers

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
        rng = np.random.default_rng([self.seed, 1, epoch, k])
        # a region with probability proportional to its duration (1.x's weighted random_segment)
        low = np.where(ix.offsets[labels] > 0, ix.cumulative[np.maximum(ix.offsets[labels] - 1, 0)], 0.0)
        high = ix.cumulative[ix.offsets[labels + 1] - 1]
        u = low + rng.random(len(labels)) * (high - low)
        rows = np.searchsorted(ix.cumulative, u, side="right")
        rows = np.clip(rows, ix.offsets[labels], ix.offsets[labels + 1] - 1)
        # then a chunk start uniformly inside it (1.x's random_subsegment)
        starts = ix.seg_start[rows] + rng.random(len(labels)) * ix.seg_span[rows]
        return BatchPlan(labels=labels.astype(np.int64), files=ix.seg_file[rows], starts=starts)

    def sample_plan(self, epoch: int, k: int) -> list[dict[str, Any]]:
        """This rank's chunks of batch ``k`` of ``epoch``: uri, path, speaker, start, duration."""
        plan = self.plan(epoch, k)
        ix = self.index
        return [{"uri": ix.uris[f], "path": ix.paths[f], "speaker": ix.speakers[int(s)],
                 "label": int(s), "start": float(t), "duration": ix.duration}
                for s, f, t in zip(plan.labels[self.share], plan.files[self.share],
                                   plan.starts[self.share])]

    def batch(self, epoch: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """This rank's share of batch ``k`` of ``epoch`` as numpy arrays."""
        plan = self.plan(epoch, k)
        rows = range(self.share.start, self.share.stop)
        waveforms = np.empty((len(rows), self.samples), dtype=np.float32)
        paths, duration = self.index.paths, self.index.duration
        for i, row in enumerate(rows):
            read_crop(paths[plan.files[row]], plan.starts[row], duration, self.sample_rate,
                      out=waveforms[i])
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, 2, epoch, k, row])
                waveforms[i] = self.augment(waveforms[i], rng)
        return waveforms, plan.labels[self.share]

    def __getitem__(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, k = divmod(int(g), self.batches_per_epoch)
        waveforms, labels = self.batch(epoch, k)
        return torch.from_numpy(waveforms), torch.from_numpy(labels)


class _Endless:
    """Global batch numbers from ``first`` on, afresh at every iteration (like a range)."""

    def __init__(self, first: int) -> None:
        self.first = first

    def __iter__(self) -> Iterator[int]:
        return itertools.count(self.first)


def _worker_init(_: int) -> None:
    # resampling is the only torch work in a worker: one thread each, the cores are the workers'
    torch.set_num_threads(1)


class BatchLoader:
    """Iterates this rank's batches from (epoch, start_batch) on, with worker processes.

    Yields ``(waveforms (share, samples) float32, labels (share,) int64)`` tensors. After each
    batch, ``position`` is its (epoch, batch) and ``state_dict()`` the resume point (the next
    batch); ``make_loader(..., epoch=state['epoch'], start_batch=state['batch'])`` goes on
    exactly there.
    """

    def __init__(self, dataset: SpeakerBatches, *, epoch: int, start_batch: int,
                 epochs: int | None, workers: int, pin_memory: bool, prefetch: int) -> None:
        bpe = dataset.batches_per_epoch
        if not 0 <= start_batch < bpe:
            raise TrainingError(f"resume batch {start_batch} is outside epoch of {bpe} batches")
        self.dataset = dataset
        self.first = epoch * bpe + start_batch
        self.stop = None if epochs is None else (epoch + epochs) * bpe
        self.position: tuple[int, int] | None = None
        self._next = self.first
        sampler: Iterable[int] = (_Endless(self.first) if self.stop is None
                                  else range(self.first, self.stop))
        self.loader = DataLoader(
            dataset, batch_size=None, sampler=sampler, num_workers=workers,
            persistent_workers=workers > 0, prefetch_factor=prefetch if workers > 0 else None,
            pin_memory=pin_memory, worker_init_fn=_worker_init if workers > 0 else None)

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

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("an endless loader (epochs=None) has no length")
        return self.stop - self.first

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = self.first
        for waveforms, labels in self.loader:
            self.position = divmod(g, self.dataset.batches_per_epoch)
            g += 1
            self._next = g
            yield waveforms, labels

    def state_dict(self) -> dict[str, int]:
        """Where to resume: the (epoch, batch) after the last one yielded, and the seed."""
        epoch, k = divmod(self._next, self.dataset.batches_per_epoch)
        return {"epoch": epoch, "batch": k, "seed": self.dataset.seed}


def make_loader(files: Sequence[Any] | SpeakerIndex, cfg: Any, *, workers: int, seed: int,
                rank: int = 0, world: int = 1, start_batch: int = 0, epoch: int = 0,
                epochs: int | None = 1, augment: Augment | None = None, pin_memory: bool = False,
                strict: bool = False, prefetch: int = 4) -> BatchLoader:
    """Training batches of a config's task, ready to iterate.

    Parameters
    ----------
    files : sequence of ProtocolFile, or SpeakerIndex
        The training subset's files, or an index already built from them (``build_index``).
    cfg : engine.config.Config
        Uses ``task`` (duration, per_fold, per_label, per_epoch, label_min_duration) and
        ``feature_extraction.sample_rate``.
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
        Per-chunk augmentation (``engine.augment``).
    pin_memory : bool, optional
        Pin batches for faster host-to-GPU copies.
    strict : bool, optional
        Unreadable files and too-short speakers are fatal instead of reported.
    prefetch : int, optional
        Batches prepared ahead by each worker.

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
    dataset = SpeakerBatches(index, per_fold=task.per_fold, per_label=task.per_label,
                             per_epoch=task.per_epoch, sample_rate=cfg.feature_extraction.sample_rate,
                             seed=seed, rank=rank, world=world, augment=augment)
    return BatchLoader(dataset, epoch=epoch, start_batch=start_batch, epochs=epochs,
                       workers=workers, pin_memory=pin_memory, prefetch=prefetch)
