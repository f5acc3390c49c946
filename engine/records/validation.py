"""What validation records: the figures of a checkpoint's trial scores, raw and after AS-norm."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.layout import CheckpointName
from engine.records.fields import PathText, as_args


def checkpoint_title(name: CheckpointName) -> str:
    """How a line names a checkpoint: ``7`` -> ``epoch 7``, averaged weights by their name (``avg-last2``)."""
    return f"epoch {name}" if isinstance(name, int) else name


def checkpoint_list(names: Iterable[CheckpointName]) -> str:
    """How a line lists checkpoints: epochs as runs of consecutive numbers, then averaged weights by
    name (``0-4, 6, 9-12, avg-top5``); ``none`` for none. A run of 250 epochs is one ``0-250``."""
    names = list(names)
    epochs = sorted({n for n in names if isinstance(n, int)})
    runs: list[list[int]] = []
    for e in epochs:
        if runs and e == runs[-1][-1] + 1:
            runs[-1].append(e)
        else:
            runs.append([e])
    parts = [f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs]
    parts += sorted({n for n in names if isinstance(n, str)})
    return ", ".join(parts) or "none"


@dataclass(frozen=True, kw_only=True)
class Figures:
    """Speaker-verification figures of one list of trial scores.

    ``eer`` is None only as read back from the runs database, which stores a NaN EER (a weighting
    with no non-target trial) as NULL; what a validation computes always has one.
    """

    eer: float | None
    eer_low: float | None = None
    eer_high: float | None = None
    mindcf_01: float | None = None
    mindcf_005: float | None = None
    threshold: float | None = None

    @property
    def eer_ci_95(self) -> tuple[float, float] | None:
        """The 95 % bootstrap interval of the EER, when it was computed."""
        return None if self.eer_low is None or self.eer_high is None else (self.eer_low, self.eer_high)

    @property
    def eer_text(self) -> str:
        """``4.36 %``, or ``—`` without an EER."""
        return "—" if self.eer is None else f"{100 * self.eer:.2f} %"

    @property
    def complete(self) -> bool:
        """Whether every figure is there (a params.yml or an old row may hold only the EER)."""
        return None not in (self.eer_low, self.eer_high, self.mindcf_01, self.mindcf_005, self.threshold)


@dataclass(frozen=True, kw_only=True)
class AsNormFigures(Figures):
    """The figures of the same trials after adaptive S-norm against the top ``cohort_size``."""

    cohort_size: int | None


#: the ``validations`` column of each AS-norm figure (the raw figures have the plain names)
ASNORM_COLUMNS: dict[str, str] = {
    "cohort_size": "cohort_size", "eer": "eer_asnorm", "eer_low": "eer_asnorm_low",
    "eer_high": "eer_asnorm_high", "mindcf_01": "mindcf_01_asnorm", "mindcf_005": "mindcf_005_asnorm",
    "threshold": "threshold_asnorm"}


#: the ``validations`` columns of calibration (the fields of the same names)
CALIBRATION_COLUMNS = ("min_cllr", "cllr", "actual_dcf_01", "actual_dcf_005", "calibration_list")


@dataclass(frozen=True, kw_only=True)
class ValidationResult(Figures):
    """The figures of one validated checkpoint: an epoch, or averaged weights (``avg-top5``).

    ``epoch`` is the epoch, or for averaged weights the last epoch averaged (None only when
    read from a params.yml that names averaged weights, which does not say).
    """

    epoch: int | None
    checkpoint_name: str | None = None
    n_trials: int | None = None
    scores_path: PathText | None = None
    asnorm: AsNormFigures | None = None
    #: Cllr (bits) of the best monotonic mapping of the raw scores (PAV): needs no calibration list
    min_cllr: float | None = None
    #: after a calibration trained on ``calibration_list`` (``validate --calibration``): its Cllr
    #: and the actual DCF of its Bayes decisions at the minDCF priors 0.01 and 0.05
    cllr: float | None = None
    actual_dcf_01: float | None = None
    actual_dcf_005: float | None = None
    calibration_list: str | None = None

    @property
    def checkpoint(self) -> CheckpointName:
        """What was validated: the epoch, or the averaged weights' name."""
        if self.checkpoint_name is not None:
            return self.checkpoint_name
        assert self.epoch is not None, "a validation of an epoch has its epoch"
        return self.epoch

    @property
    def title(self) -> str:
        """How a line names what was validated: ``epoch 7``, or ``avg-last2``."""
        return checkpoint_title(self.checkpoint)

    def ranked(self) -> tuple[float, int]:
        """Sort key of the lowest EER, the earlier epoch on a tie (named weights first on a tie); a
        result without an EER after every other."""
        return (math.inf if self.eer is None else self.eer,
                self.epoch if self.checkpoint_name is None and self.epoch is not None else -1)

    def columns(self) -> dict[str, Any]:
        """The ``validations`` columns of this result (AS-norm figures in their own columns)."""
        row = {k: v for k, v in as_args(self).items() if k != "asnorm"}
        norm = as_args(self.asnorm) if self.asnorm is not None else {}
        row.update({column: norm.get(field) for field, column in ASNORM_COLUMNS.items()})
        return row

    def normalised(self) -> ValidationResult | None:
        """This result with its AS-norm figures in place of the raw ones (None without any)."""
        if self.asnorm is None:
            return None
        n = self.asnorm
        # the calibration figures are those of the raw scores: none for the normalised ones
        return dataclasses.replace(self, eer=n.eer, eer_low=n.eer_low, eer_high=n.eer_high, mindcf_01=n.mindcf_01,
                                   mindcf_005=n.mindcf_005, threshold=n.threshold,
                                   **dict.fromkeys(CALIBRATION_COLUMNS))


@dataclass(frozen=True, kw_only=True)
class RecordedValidation(ValidationResult):
    """A validation as the runs database holds it: the result and the validate run that recorded it.

    Kept apart from ``ValidationResult`` because the writers give the run themselves: a result
    that carried one would write it as one of its columns.
    """

    run_id: int
    train_run_id: int | None = None
