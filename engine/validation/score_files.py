"""Score files (``VAL_DIR/scores/{epoch:04d}.txt``): written, read, and the figures recomputed from them.

torch-free (the TUI draws DET curves from them). One ``reference score uri1 uri2`` line per trial
(reference 1 = target trial).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_text
from engine.errors import SpkembError
from engine.layout import CheckpointName, ValidationDir
from engine.records import Figures, ValidationResult, checkpoint_title


def score_text(score: float) -> str:
    """A score as a score file has it: 8 decimals, about a float32 cosine's own precision near 1 (with 6,
    the cosines of a barely trained network, all within 1e-4 of 1, fell into a few dozen ties)."""
    return f"{score:.8f}"


def write_scores(path: str | Path, rows: Iterable[tuple[int, float, str, str]]) -> Path:
    """Write ``reference score uri1 uri2`` lines (reference 1 = target trial) atomically."""
    text = "".join(f"{int(ref)} {score_text(score)} {uri1} {uri2}\n" for ref, score, uri1, uri2 in rows)
    return atomic_write_text(path, text)


def read_scores(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(is_target, scores) of a scores file written by :func:`write_scores`.

    Raises
    ------
    SpkembError
        Naming ``FILE:LINE`` of the first line that is not ``0|1 finite-score uri1 uri2``, or a file
        that is not UTF-8 text.
    """
    refs, scores = [], []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                ref, score = trial_fields(fields)
                if ref is None or score is None:
                    raise SpkembError(f"{path}:{n}: expected `reference score uri1 uri2` (reference 0 or 1, "
                                      f"a finite score), got {line.strip()[:80]!r}; delete the file and "
                                      "validate again")
                refs.append(ref)
                scores.append(score)
    except UnicodeDecodeError as e:
        raise SpkembError(f"{path} is not UTF-8 text (byte {e.start}): delete the file and validate again") from e
    return np.asarray(refs, dtype=bool), np.asarray(scores, dtype=np.float64)


def trial_fields(fields: list[str]) -> tuple[int | None, float | None]:
    """(reference, score) of a score line's fields; None for one that is not 0/1, or not a finite number."""
    ref = int(fields[0]) if fields[0] in ("0", "1") else None
    try:
        score: float | None = float(fields[1])
    except (ValueError, IndexError):
        score = None
    return ref, score if score is not None and math.isfinite(score) else None


def figures_from_scores(is_target: np.ndarray, scores: np.ndarray, n_bootstrap: int = 1000,
                        source: str | Path | None = None) -> Figures:
    """Every figure of one list of scores: EER (+ threshold, 95 % interval), minDCF at 0.01 and 0.05.

    Scores no EER can be computed from (NaN, trials of one kind) raise ``SpkembError`` naming
    ``source`` (the scores file).
    """
    from engine.validation.metrics import bootstrap_eer_ci, equal_error_rate, min_dcf

    try:
        eer, threshold = equal_error_rate(scores, is_target)
        low, high = bootstrap_eer_ci(scores, is_target, n=n_bootstrap)
        return Figures(eer=eer, eer_low=low, eer_high=high, threshold=threshold,
                       mindcf_01=min_dcf(scores, is_target, 0.01), mindcf_005=min_dcf(scores, is_target, 0.05))
    except ValueError as e:
        where = source if source is not None else "the scores"
        raise SpkembError(f"{where}: no EER can be computed: {e} — check the trial list, then delete "
                          "the scores file and validate that epoch again") from e


def result_from_scores(name: CheckpointName, is_target: np.ndarray, scores: np.ndarray, n_bootstrap: int = 1000,
                       source: str | Path | None = None, last_epoch: int | None = None) -> ValidationResult:
    """The result of the checkpoint ``name`` (an epoch, or averaged weights ending at ``last_epoch``)."""
    from engine.validation.calibration import min_cllr

    figures = figures_from_scores(is_target, scores, n_bootstrap, source or f"the scores of {checkpoint_title(name)}")
    named = isinstance(name, str)
    return ValidationResult(**vars(figures), min_cllr=min_cllr(scores, is_target),
                            epoch=last_epoch if named else int(name),
                            checkpoint_name=name if isinstance(name, str) else None, n_trials=int(scores.size),
                            scores_path=None if source is None else str(source))


def results_from_scores(val: ValidationDir) -> list[ValidationResult]:
    """One result per score file of VAL_DIR (epochs, then averaged weights), recomputed."""
    found = sorted(val.score_files(), key=lambda file: checkpoint_order(file[0]))
    return [result_from_scores(name, *read_scores(path), source=path) for name, path in found]


def checkpoint_order(name: CheckpointName) -> tuple[int, int, str]:
    """Epochs in order, then named checkpoints by name."""
    return (0, name, "") if isinstance(name, int) else (1, 0, name)
