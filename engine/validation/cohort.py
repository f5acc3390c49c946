"""The AS-norm cohort: one mean embedding per training speaker.

As in WeSpeaker's recipes, the cohort is made of the speakers the network was trained on; each
is represented by the mean embedding of a bounded number of its training files (the first ones
of the protocol's list, so that the cohort is the same at every epoch). The training protocol
and subset are those of the TRN_DIR's training run (its database row, else the folder name,
``EXP_DIR/train/{PROTOCOL}.{subset}``). A file belongs to the speaker who speaks most in it.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.data.audio_checks import Problem, check_files
from engine.data.protocols import load_protocol, subset_files
from engine.data.speech_regions import speech_intervals
from engine.errors import ProtocolError
from engine.layout import TrainingDir
from engine.records import Run
from engine.requests.validation import MIN_COHORT_SIZE

#: training files embedded per cohort speaker (WeSpeaker averages all; a few keep validation cheap)
COHORT_FILES = 3


@dataclass(frozen=True)
class Cohort:
    """Training speakers and the files whose embeddings are averaged for each."""

    protocol: str
    subset: str
    speakers: list[str]
    files: dict[str, str]           # uri -> audio path
    speaker_of: dict[str, int]      # uri -> index into speakers
    problems: list[Problem] = field(default_factory=list)

    @functools.cached_property
    def key(self) -> str:
        """A digest of the files and the speaker each stands for: scores normalised by another cohort
        (``--cohort-files``, or the training list changed) are not those this cohort would give."""
        lines = "".join(f"{uri}\t{self.speakers[i]}\n" for uri, i in sorted(self.speaker_of.items()))
        return hashlib.sha256(lines.encode()).hexdigest()


def training_protocol(trn: TrainingDir, train_run: Run | None) -> tuple[str, str]:
    """(protocol, subset) the network of TRN_DIR was trained on."""
    if train_run is not None and train_run.protocol and train_run.subset:
        return train_run.protocol, train_run.subset
    protocol, _, subset = trn.root.name.rpartition(".")
    if protocol.count(".") != 2 or not subset:
        raise ProtocolError(f"cannot tell the training protocol of {trn.root} (no training run recorded, and "
                            "the folder is not named PROTOCOL.SUBSET): AS-norm needs the training speakers")
    return protocol, subset


def _main_speaker(file: Any) -> str | None:
    speech = {label: sum(e - s for s, e in ivs) for label, ivs in speech_intervals(file).items()}
    speech = {label: seconds for label, seconds in speech.items() if seconds > 0}
    return max(speech, key=lambda label: (speech[label], label)) if speech else None


def cohort_files(protocol: str, subset: str, database: str | None, *, size: int,
                 per_speaker: int = COHORT_FILES) -> Cohort:
    """Up to ``per_speaker`` readable files of each training speaker of ``protocol.subset``.

    Raises
    ------
    ProtocolError
        Fewer usable training speakers than ``size`` (the top-N of AS-norm).
    """
    chosen: dict[str, list[tuple[str, str]]] = {}
    try:
        listed = subset_files(load_protocol(protocol, database), subset)
    except ProtocolError as e:  # said of the training protocol, which validate was not given
        raise ProtocolError(f"--score-norm asnorm draws its cohort from the training speakers of {protocol} "
                            f"{subset}, which cannot be listed here: {e}") from e
    for f in listed:
        speaker = _main_speaker(f)
        if speaker is not None and len(chosen.setdefault(speaker, [])) < per_speaker:
            chosen[speaker].append((str(f["uri"]), str(f["audio"])))
    problems = check_files(path for files in chosen.values() for _, path in files)
    bad = {p.path for p in problems}
    speakers: list[str] = []
    files: dict[str, str] = {}
    speaker_of: dict[str, int] = {}
    for speaker in sorted(chosen):
        usable = [(uri, path) for uri, path in chosen[speaker] if path not in bad]
        if usable:
            for uri, path in usable:
                files[uri], speaker_of[uri] = path, len(speakers)
            speakers.append(speaker)
    if len(speakers) < size:
        fix = (f"pass --cohort-size {len(speakers)} or less" if len(speakers) >= MIN_COHORT_SIZE else
               f"AS-norm needs {MIN_COHORT_SIZE}: validate without --score-norm")
        raise ProtocolError(f"--cohort-size {size}: {protocol} {subset} has {len(speakers)} training speaker(s) "
                            f"with a readable file; {fix}")
    return Cohort(protocol, subset, speakers, files, speaker_of, problems)


def speaker_means(embeddings: dict[str, np.ndarray], cohort: Cohort) -> np.ndarray:
    """(speakers, dimension): the mean embedding of each cohort speaker's files."""
    dim = len(next(iter(embeddings.values())))
    sums, counts = np.zeros((len(cohort.speakers), dim)), np.zeros(len(cohort.speakers))
    for uri, speaker in cohort.speaker_of.items():
        sums[speaker] += embeddings[uri]
        counts[speaker] += 1
    return sums / counts[:, None]
