"""AS-norm figures of one checkpoint, beside its raw ones (``validate --score-norm asnorm``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.console import say
from engine.errors import SpkembError
from engine.layout import CheckpointName, ValidationDir
from engine.validation.cohort import Cohort, speaker_means
from engine.validation.score_norm import asnorm_scores
from engine.validation.selection import read_scores, result_from_scores, write_scores


@dataclass(frozen=True)
class ScoreNorm:
    """What ``--score-norm asnorm --cohort-size N`` asks for: the cohort and its top N."""

    cohort: Cohort
    size: int


def asnorm_result(norm: ScoreNorm, name: CheckpointName, val_dir: Path, cohort_embeddings: dict[str, np.ndarray],
                  embeddings: dict[str, np.ndarray], trials: list[tuple[int, str, str]],
                  scores: np.ndarray) -> dict[str, Any]:
    """Normalise the raw ``scores``, write ``scores/{name}.asnorm.txt``; the figures of that file."""
    normed = asnorm_scores(embeddings, speaker_means(cohort_embeddings, norm.cohort), trials, scores, norm.size)
    path = write_scores(ValidationDir(Path(val_dir)).normalised_score_file(name),
                        ((ref, s, u1, u2) for (ref, u1, u2), s in zip(trials, normed)))
    result = result_from_scores(name, *read_scores(path))
    result["cohort_size"] = norm.size
    return result


def asnorm_columns(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``validations`` columns of an AS-norm result (None without one)."""
    if result is None:
        return None
    low, high = result.get("eer_ci_95") or (None, None)
    return {"cohort_size": result.get("cohort_size"), "eer_asnorm": result["equal_error_rate"],
            "eer_asnorm_low": low, "eer_asnorm_high": high, "mindcf_01_asnorm": result.get("min_dcf_0.01"),
            "mindcf_005_asnorm": result.get("min_dcf_0.05"), "threshold_asnorm": result.get("threshold")}


def prepare_score_norm(trn_dir: Path, train_run: dict[str, Any] | None, database: str | None, *, size: int,
                       per_speaker: int, writer: Any, run_id: int) -> ScoreNorm:
    """The AS-norm cohort of TRN_DIR's training speakers; unreadable cohort files are recorded and left out.

    A cohort that cannot be made (no training protocol, fewer speakers than ``size``) fails the run.
    """
    from engine.validation.cohort import cohort_files, training_protocol

    try:
        protocol, subset = training_protocol(trn_dir, train_run)
        cohort = cohort_files(protocol, subset, database, size=size, per_speaker=per_speaker)
    except SpkembError as e:
        writer.set_status(run_id, "failed", str(e))
        writer.close()
        raise
    for p in cohort.problems:
        writer.add_problem(run_id, path=p.path, problem=p.problem, fatal=False)
    say(f"validate: AS-norm, top {size} of {len(cohort.speakers)} training speakers of {protocol} {subset} "
        f"({len(cohort.files)} files)")
    return ScoreNorm(cohort, size)


def report_asnorm(name: CheckpointName, result: dict[str, Any], norm: ScoreNorm) -> None:
    """One stderr line with the AS-norm figures of a checkpoint."""
    low, high = result["eer_ci_95"]
    say(f"epoch {name}: AS-norm EER {100 * result['equal_error_rate']:.2f} % [95 % CI {100 * low:.2f}, "
        f"{100 * high:.2f}]  minDCF(0.01) {result['min_dcf_0.01']:.3f}  (top {norm.size} of "
        f"{len(norm.cohort.speakers)} speakers)")
