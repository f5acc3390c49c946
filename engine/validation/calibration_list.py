"""The calibration trial list of ``validate --calibration SUBSET``: its scores by each checkpoint, and
the calibration figures they give the evaluated scores (the maths: ``engine.validation.calibration``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.layout import CheckpointName, ValidationDir
from engine.validation.calibration import CalibratedFigures, calibrated_figures, train_calibration
from engine.validation.score_files import read_scores, write_scores
from engine.validation.trial_scores import cosine_scores


@dataclass(frozen=True)
class CalibrationList:
    """The trials a calibration is trained on, named ``PROTOCOL.subset``."""

    name: str
    trials: list[tuple[int, str, str]]


def calibration_figures(val: ValidationDir, epoch: CheckpointName, scores_file: Path, embeddings: dict[str, np.ndarray],
                        calibration: CalibrationList) -> CalibratedFigures:
    """The calibration figures of the scores in ``scores_file``, by a calibration trained on the
    calibration list scored with the same embeddings (written beside them as
    ``scores/{epoch:04d}.calibration.txt``, and fitted on them as read back, eight decimals)."""
    trials = calibration.trials
    written = write_scores(val.calibration_score_file(epoch),
                           ((ref, s, u1, u2) for (ref, u1, u2), s in
                            zip(trials, cosine_scores(embeddings, trials), strict=True)))
    training_targets, training_scores = read_scores(written)
    fitted = train_calibration(training_scores, training_targets, trained_on=calibration.name)
    is_target, scores = read_scores(scores_file)
    return calibrated_figures(scores, is_target, fitted)
