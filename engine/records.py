"""What runs record: typed records that the engine hands to its writers and reads back.

torch-free and free of the database: the writers (``engine.store.writer.RunWriter``: the
SQLite store, the event file) take these records, the validation builds and compares them,
the TUI reads their figures. Field names are the database's column names (``validations``,
``train_epochs``, ``checkpoints``, ``extractions``) and the keyword arguments of the event
files' ``args`` (format 1), so that a record crosses each boundary without being renamed;
``params.yml``'s own keys (``equal_error_rate``, ``min_dcf_0.01``) are spelled only where
that file is read and written (``engine.validation.selection``).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.layout import CheckpointName

PathText = str | os.PathLike[str]


@dataclass(frozen=True, kw_only=True)
class EpochSummary:
    """One training epoch: its mean loss, last learning rate, speed and duration."""

    epoch: int
    loss: float | None
    lr: float | None
    chunks_per_s: float | None
    seconds: float | None


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A checkpoint file already on disk (its row is the commit marker that watchers trust).

    Averaged weights (``spkemb-engine average``) carry their ``name`` (``avg-top5``), the epochs
    that went in (``averaged``) and, as ``epoch``, the last of them.
    """

    epoch: int
    step: int | None
    path: PathText
    partial: bool
    name: str | None = None
    averaged: list[int] | None = None


@dataclass(frozen=True, kw_only=True)
class Figures:
    """Speaker-verification figures of one list of trial scores."""

    eer: float
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

    @property
    def checkpoint(self) -> CheckpointName:
        """What was validated: the epoch, or the averaged weights' name."""
        if self.checkpoint_name is not None:
            return self.checkpoint_name
        assert self.epoch is not None, "a validation of an epoch has its epoch"
        return self.epoch

    def ranked(self) -> tuple[float, int]:
        """Sort key of the lowest EER, the earlier epoch on a tie (named weights first on a tie)."""
        return self.eer, self.epoch if self.checkpoint_name is None and self.epoch is not None else -1

    def columns(self) -> dict[str, Any]:
        """The ``validations`` columns of this result (AS-norm figures in their own columns)."""
        row = {k: v for k, v in as_args(self).items() if k != "asnorm"}
        norm = as_args(self.asnorm) if self.asnorm is not None else {}
        row.update({column: norm.get(field) for field, column in ASNORM_COLUMNS.items()})
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ValidationResult:
        """The result a ``validations`` row holds."""
        asnorm = None
        if row.get("eer_asnorm") is not None:
            asnorm = AsNormFigures(**{field: row.get(column) for field, column in ASNORM_COLUMNS.items()})
        return cls(epoch=int(row["epoch"]), checkpoint_name=row.get("checkpoint_name"), eer=float(row["eer"]),
                   eer_low=row.get("eer_low"), eer_high=row.get("eer_high"), mindcf_01=row.get("mindcf_01"),
                   mindcf_005=row.get("mindcf_005"), threshold=row.get("threshold"),
                   n_trials=row.get("n_trials"), scores_path=row.get("scores_path"), asnorm=asnorm)


@dataclass(frozen=True, kw_only=True)
class Extraction:
    """One finished ``apply`` of a protocol subset, with the checkpoint it came from.

    ``checkpoint`` (path, sha256, name) is the file the embeddings came from; ``validate_run_id``
    the validate run whose params.yml chose it and ``chosen_by`` how (``params.yml``, ``--epoch``).
    """

    epoch: int
    protocol: str
    subset: str
    out_dir: PathText
    mode: str
    step: float
    duration: float
    files: int
    audio_seconds: float
    wall_seconds: float
    checkpoint: PathText | None = None
    checkpoint_sha256: str | None = None
    checkpoint_name: str | None = None
    validate_run_id: int | None = None
    chosen_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class Run:
    """The columns of a ``runs`` row that the engine acts on (the TUI shows every column)."""

    id: int
    kind: str
    status: str
    out_dir: str | None
    exp_dir: str | None = None
    name: str | None = None
    protocol: str | None = None
    subset: str | None = None
    config: dict[str, Any] | None = None
    epoch: int | None = None
    step: int | None = None
    target_epoch: int | None = None
    parent_id: int | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        """The run of a row of ``Store.runs``/``find_runs`` (other columns are left out)."""
        return cls(**{f.name: row.get(f.name) for f in dataclasses.fields(cls)})


R = TypeVar("R")


def as_args(record: Any) -> dict[str, Any]:
    """A record as the keyword arguments of an event-file line (nested records as objects)."""
    return {f.name: _as_value(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _as_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_args(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def from_args(cls: type[R], args: dict[str, Any]) -> R:
    """The record of class ``cls`` from the arguments ``as_args`` wrote (already checked)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in args:
            continue
        value, nested = args[f.name], record_class(hints[f.name])
        values[f.name] = from_args(nested, value) if nested is not None and isinstance(value, dict) else value
    return cls(**values)


def record_class(hint: Any) -> type | None:
    """The record class an annotation names (``AsNormFigures | None`` -> AsNormFigures), if any."""
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None
