"""Where every training speaker speaks: the protocol's files indexed once before training.

Every file is checked once (``soundfile.info``); the speech of each speaker (annotation ∩
annotated, without overlapped speech) is kept where a region holds at least one chunk, as in
pyannote.audio 1.x's ``SpeechSegmentGenerator._load_metadata``. Batches are then drawn from
these flat arrays by the loader workers for the whole run: no protocol re-scan per batch.

The index is derived from an ``engine.data.table.IndexTable`` (the cached columns) by
``derive_index``, for a chunk duration: the same function whether the table was just built
or memory-mapped from the cache, so that both give the same batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.audio import Indexed
from engine.data.audio_checks import Problem
from engine.data.columns import StringColumn
from engine.data.file_checks import check_files
from engine.data.speech_regions import speech_intervals
from engine.data.table import IndexTable, ListedBuilder, assemble
from engine.errors import AudioError, TrainingError


@dataclass(frozen=True)
class FileFacts:
    """What the index saw of each file (its columns, memory-mapped from the cache when loaded)."""

    frames: np.ndarray  # (files,) int64
    sample_rate: np.ndarray  # (files,) int32
    size: np.ndarray  # (files,) int64
    mtime_ns: np.ndarray  # (files,) int64

    def __getitem__(self, f: int | np.integer) -> Indexed:
        f = int(f)
        return Indexed(frames=int(self.frames[f]), samplerate=int(self.sample_rate[f]), size=int(self.size[f]),
                       mtime_ns=int(self.mtime_ns[f]))


@dataclass
class SpeakerIndex:
    """Where each training speaker speaks: computed once from the protocol's files.

    Segments of all speakers are stored flat, speaker after speaker; speaker ``s`` owns rows
    ``offsets[s]:offsets[s + 1]``. ``cumulative`` is the running sum of segment durations,
    so that drawing a segment with probability proportional to its duration is one
    ``searchsorted``. Paths and uris are string columns (two arrays each), shared by forked
    loader workers without copying.
    """

    duration: float
    speakers: list[str]
    paths: StringColumn
    uris: StringColumn
    offsets: np.ndarray  # (speakers + 1,) int64
    seg_file: np.ndarray  # (segments,) int32, index into paths
    seg_start: np.ndarray  # (segments,) float64, seconds
    seg_span: np.ndarray  # (segments,) float64, room for a chunk start: duration - chunk duration
    cumulative: np.ndarray  # (segments,) float64
    speech: np.ndarray  # (speakers,) float64, usable seconds of each speaker
    problems: list[Problem] = field(default_factory=list)
    #: what the index saw of each file: a read that finds a file otherwise skips it (None: no check)
    files: FileFacts | None = None

    @property
    def total_speech(self) -> float:
        """Seconds of usable speech of all speakers."""
        return float(self.speech.sum())


def table_from_files(files: Iterable[Any]) -> IndexTable:
    """List and check protocol files (pyannote ProtocolFiles) into an index table, uncached."""
    builder = ListedBuilder()
    for file in files:
        builder.add(str(file["uri"]), str(file["audio"]), speech_intervals(file))
    listed = builder.build()
    return assemble(listed, check_files(listed.paths))


def build_index(files: Iterable[Any], duration: float, *, label_min_duration: float = 0.0,
                strict: bool = False) -> SpeakerIndex:
    """Gather every speaker's speech regions long enough for one chunk (uncached).

    Parameters
    ----------
    files : iterable of ProtocolFile
        Training files with ``uri``, ``audio``, ``annotation`` and ``annotated``.
    duration, label_min_duration, strict
        As in ``derive_index``.
    """
    return derive_index(table_from_files(files), duration, label_min_duration=label_min_duration,
                        strict=strict)


def derive_index(table: IndexTable, duration: float, *, label_min_duration: float = 0.0,
                 strict: bool = False) -> SpeakerIndex:
    """The speakers and regions of ``table`` usable for chunks of ``duration`` seconds.

    Parameters
    ----------
    table : IndexTable
        Readable files and every speaker's speech regions (``engine.data``).
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
    if strict and table.problems:
        first = table.problems[0]
        raise AudioError(first.problem, path=first.path)
    problems = list(table.problems)
    lengths = table.reg_end - table.reg_start
    usable = lengths >= duration
    kept = _kept_speakers(table, lengths, usable, duration, label_min_duration, strict, problems)
    if not len(table.paths) and problems:
        raise _nothing_readable([p for p in problems if p.kind == "file"] or problems)
    if not len(table.labels) and len(table.paths):
        # not one turn for any listed file: the RTTM names its files otherwise than the uri list
        raise TrainingError(f"none of the {len(table.paths)} readable file(s) has a speaker turn in the protocol's "
                            f"annotation — the uri field (the 2nd) of its RTTM lines must be a line of the uri "
                            f"list, as {table.uris[0]!r} is: compare the two files")
    if not kept.any():
        raise TrainingError(f"no speaker has a speech region of at least {duration:g} s "
                            f"in {len(table.paths)} readable file(s) — check the protocol's annotation "
                            f"and annotated, or lower task duration")
    rows = np.flatnonzero(usable & kept[table.reg_label])
    new_id = np.cumsum(kept) - 1
    counts = np.bincount(new_id[table.reg_label[rows]], minlength=int(kept.sum()))
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    seg_lengths = lengths[rows]
    speech = np.array([seg_lengths[offsets[s]:offsets[s + 1]].sum() for s in range(len(counts))])
    return SpeakerIndex(
        duration=duration, speakers=[table.labels[s] for s in np.flatnonzero(kept)],
        paths=table.paths, uris=table.uris, offsets=offsets,
        seg_file=np.ascontiguousarray(table.reg_file[rows], dtype=np.int32),
        seg_start=np.ascontiguousarray(table.reg_start[rows]),
        seg_span=np.maximum(0.0, seg_lengths - duration), cumulative=np.cumsum(seg_lengths),
        speech=speech, problems=problems,
        files=FileFacts(frames=table.frames, sample_rate=table.sample_rate, size=table.size,
                        mtime_ns=table.mtime_ns))


def _kept_speakers(table: IndexTable, lengths: np.ndarray, usable: np.ndarray, duration: float,
                   label_min_duration: float, strict: bool, problems: list[Problem]) -> np.ndarray:
    """Which labels keep a usable region and enough speech; the others are added to ``problems``."""
    n_labels = len(table.labels)
    # the table's regions are sorted by label: each label's rows are one slice
    bounds = np.searchsorted(table.reg_label, np.arange(n_labels + 1))
    kept = np.zeros(n_labels, dtype=bool)
    for s in range(n_labels):
        a, b = bounds[s], bounds[s + 1]
        ok = usable[a:b]
        label = table.labels[s]
        if not ok.any():
            heard = lengths[a:b]
            message = (f"speaker {label!r} has no speech region of at least {duration:g} s "
                       f"(longest {heard.max(initial=0.0):.2f} s, {heard.sum():.2f} s in all): skipped")
            if strict:
                raise TrainingError(message + " — lower task duration, or drop the speaker "
                                    "from the protocol (or train without --strict)")
            problems.append(Problem(path=table.paths[table.label_file[s]], problem=message, kind="speaker"))
            continue
        total = float(lengths[a:b][ok].sum())
        if total < label_min_duration:
            problems.append(Problem(path=table.paths[table.label_file[s]], problem=(
                f"speaker {label!r} has {total:.2f} s of usable speech, less than "
                f"label_min_duration={label_min_duration:g} s: skipped"), kind="speaker"))
        else:
            kept[s] = True
    return kept


def _nothing_readable(problems: list[Problem]) -> AudioError:
    """Every training file is unusable: name the first path looked for, and the folder missing."""
    first = problems[0]
    folder, parent = None, Path(first.path).parent
    while not parent.exists() and parent != parent.parent:
        folder, parent = parent, parent.parent
    if folder is not None:
        return AudioError(f"none of the {len(problems)} training file(s) can be read: {first.path} does "
                          f"not exist, nor does the folder {folder} — fix the audio path template "
                          "of that database under `Databases:` in database.yml", path=first.path)
    return AudioError(f"none of the {len(problems)} training file(s) can be read; first: {first.problem}",
                      path=first.path)
