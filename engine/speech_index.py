"""Where every training speaker speaks: the protocol's files indexed once before training.

Every file is checked once (``soundfile.info``); the speech of each speaker (annotation ∩
annotated, without overlapped speech) is kept where a region holds at least one chunk, as in
pyannote.audio 1.x's ``SpeechSegmentGenerator._load_metadata``. Batches are then drawn from
these flat arrays by the loader workers for the whole run: no protocol re-scan per batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.audio import Problem, audio_info, check_files
from engine.errors import AudioError, TrainingError
from engine.protocols import speech_intervals


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
            problems.append(Problem(path=where[label], problem=message, kind="speaker"))
        elif total < label_min_duration:
            problems.append(Problem(path=where[label], problem=(
                f"speaker {label!r} has {total:.2f} s of usable speech, less than "
                f"label_min_duration={label_min_duration:g} s: skipped"), kind="speaker"))
        else:
            speakers.append(label)
    if not paths and bad:
        raise _nothing_readable(list(bad.values()))
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
