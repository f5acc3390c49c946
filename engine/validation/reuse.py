"""What an earlier validate run of VAL_DIR scored, reused: the figures of an epoch whose score file
is newer than its checkpoint and scores exactly this trial list, made the same way (windows or
whole files: ``scores/method.yml``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from engine.atomic import atomic_write_text
from engine.config.yamlsrc import read_yaml_file
from engine.errors import ConfigError, SpkembError
from engine.layout import CheckpointName, ValidationDir
from engine.records import ValidationResult
from engine.validation.cohort_means import read_cohort_means
from engine.validation.normalised import ScoreNorm
from engine.validation.score_files import read_scores, result_from_scores


def recorded_method(val: ValidationDir) -> Any:
    """How the scores already in VAL_DIR were made (``scores/method.yml``), None where it cannot be read."""
    try:
        return read_yaml_file(val.method).data
    except (OSError, ConfigError):  # absent, or not a method file
        return None


def same_method(val: ValidationDir, method: dict[str, Any]) -> bool:
    """Whether the scores already in VAL_DIR were made the way this run makes them (else they are made again)."""
    return recorded_method(val) == method


def write_method(val: ValidationDir, method: dict[str, Any]) -> None:
    atomic_write_text(val.method, yaml.safe_dump(method, sort_keys=True))


def reused_result(val: ValidationDir, epoch: CheckpointName, checkpoint: Path, trials: list[tuple[int, str, str]],
                  recorded: ValidationResult | None = None,
                  norm: ScoreNorm | None = None, calibrated_on: str | None = None) -> ValidationResult | None:
    """The result of an epoch an earlier validate run of VAL_DIR already scored, or None.

    Reused only when its scores file is newer than the checkpoint and scores exactly these
    trials; a validation resumed beside a resumed training run then embeds only new epochs.
    With ``norm``, and for averaged weights, only figures the database recorded complete (AS-norm
    with the same cohort size, its cohort kept; the last epoch averaged; a calibration on the same
    list) are reused.
    The figures are the ``recorded`` ones (the database's) when they are complete, else they
    are computed again from the scores file (its bootstrap takes about 2 s for 37,720 trials).
    """
    path = val.score_file(epoch)
    try:
        if path.stat().st_mtime < checkpoint.stat().st_mtime:
            return None
        pairs = scored_pairs(path)
        if pairs != _pairs(trials):
            return None
        complete = recorded if recorded is not None and recorded.complete else None
        # the same cohort (the files averaged, --cohort-files), kept: verify --score-norm asnorm reads it
        if norm is not None and (complete is None or complete.asnorm is None
                                 or complete.asnorm.cohort_size != norm.size
                                 or read_cohort_means(val.cohort_file(epoch)).key != norm.cohort.key):
            return None
        if isinstance(epoch, str) and complete is None:
            return None
        if calibrated_on is not None and (complete is None or complete.calibration_list != calibrated_on):
            return None
        result = complete if complete is not None else result_from_scores(epoch, *read_scores(path))
    except (OSError, ValueError, SpkembError):
        return None
    return dataclasses.replace(_asked(result, norm, calibrated_on), n_trials=len(pairs), scores_path=str(path))


def _asked(result: ValidationResult, norm: ScoreNorm | None, calibrated_on: str | None) -> ValidationResult:
    """``result`` with only the figures this run asks for: an earlier run's AS-norm or calibration
    is that run's, not a figure of a validation that asked for neither."""
    if norm is None:
        result = dataclasses.replace(result, asnorm=None)
    if calibrated_on is None:
        result = dataclasses.replace(result, cllr=None, actual_dcf_01=None, actual_dcf_005=None,
                                     calibration_list=None)
    return result


def scored_pairs(path: Path) -> list[tuple[str, ...]]:
    """The ``(uri1, uri2)`` of each trial a score file scores, in its order."""
    with open(path) as f:
        return [tuple(line.split()[2:4]) for line in f if line.strip()]


def scored_on(val: ValidationDir, result: ValidationResult, trials: list[tuple[int, str, str]]) -> bool:
    """Whether ``result``'s score file scores exactly ``trials`` (not another list behind the same name)."""
    try:
        return scored_pairs(val.score_file(result.checkpoint)) == _pairs(trials)
    except (OSError, ValueError):
        return False


def _pairs(trials: list[tuple[int, str, str]]) -> list[tuple[str, ...]]:
    """The ``(uri1, uri2)`` of each trial, as ``scored_pairs`` reads them from a score file."""
    return [(u1, u2) for _, u1, u2 in trials]
