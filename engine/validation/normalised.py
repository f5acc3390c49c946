"""AS-norm figures of one checkpoint, beside its raw ones (``validate --score-norm asnorm``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.layout import CheckpointName, TrainingDir, ValidationDir
from engine.process.recording import Recorder
from engine.records import AsNormFigures, Run
from engine.validation.cohort import Cohort, speaker_means
from engine.validation.cohort_means import CohortMeans, write_cohort_means
from engine.validation.score_files import figures_from_scores, read_scores, write_scores
from engine.validation.score_norm import asnorm_scores


@dataclass(frozen=True)
class ScoreNorm:
    """What ``--score-norm asnorm --cohort-size N`` asks for: the cohort and its top N."""

    cohort: Cohort
    size: int


def asnorm_result(norm: ScoreNorm, name: CheckpointName, val: ValidationDir, cohort_embeddings: dict[str, np.ndarray],
                  embeddings: dict[str, np.ndarray], trials: list[tuple[int, str, str]],
                  scores: np.ndarray) -> AsNormFigures:
    """Normalise the raw ``scores``, write ``scores/{name}.asnorm.txt`` and the cohort that normalised them
    (``scores/{name}.cohort.npz``, for ``verify``); the figures of the scores."""
    means = speaker_means(cohort_embeddings, norm.cohort)
    write_cohort_means(val.cohort_file(name), CohortMeans(means, norm.size, norm.cohort.key))
    normed = asnorm_scores(embeddings, means, trials, scores, norm.size)
    path = write_scores(val.normalised_score_file(name),
                        ((ref, s, u1, u2) for (ref, u1, u2), s in zip(trials, normed, strict=True)))
    return AsNormFigures(**vars(figures_from_scores(*read_scores(path), source=path)), cohort_size=norm.size)


def cohort_of(trn: TrainingDir, train_run: Run | None, database: str | None, *, size: int,
              per_speaker: int) -> Cohort:
    """The AS-norm cohort of TRN_DIR's training speakers, made before the validate run is recorded, so that
    a cohort that cannot be made (no training protocol, fewer speakers than ``size``) is refused, not failed."""
    from engine.validation.cohort import cohort_files, training_protocol

    protocol, subset = training_protocol(trn, train_run)
    return cohort_files(protocol, subset, database, size=size, per_speaker=per_speaker)


def prepare_score_norm(cohort: Cohort, size: int, recorder: Recorder) -> ScoreNorm:
    """AS-norm over ``cohort``: its unreadable files are recorded (and left out), and said."""
    recorder.problems(cohort.problems)
    recorder.say(f"validate: AS-norm, top {size} of {len(cohort.speakers)} training speakers of {cohort.protocol} "
                 f"{cohort.subset} ({len(cohort.files)} files)")
    return ScoreNorm(cohort, size)
