"""What runs record: typed records that the engine hands to its writers and reads back.

torch-free and free of the database: the writers (``engine.store.writer.RunWriter``: the
SQLite store, the event file) take these records, the validation builds and compares them,
the TUI reads them back from database rows (``from_row``). Field names are the column names
(``runs``, ``validations``, ``train_epochs``, ``checkpoints``, ...) and the keyword arguments of the event
files' ``args`` (format 1), so that a record crosses each boundary without being renamed;
``params.yml``'s own keys (``equal_error_rate``, ``min_dcf_0.01``) are spelled only where
that file is read and written (``engine.validation.selection``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import typing
from collections.abc import Mapping
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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EpochSummary:
        """The summary a ``train_epochs`` row holds (its ``time`` left out)."""
        return row_record(cls, row)


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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Checkpoint:
        """The checkpoint a ``checkpoints`` row holds (``averaged`` is JSON there, ``partial`` 0 or 1)."""
        averaged = row.get("averaged")
        return cls(epoch=int(row["epoch"]), step=row.get("step"), path=row["path"], partial=bool(row["partial"]),
                   name=row.get("name"), averaged=json.loads(averaged) if isinstance(averaged, str) else averaged)


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
    def from_row(cls, row: Mapping[str, Any]) -> ValidationResult:
        """The result a ``validations`` row holds."""
        asnorm = None
        if row.get("eer_asnorm") is not None:
            asnorm = AsNormFigures(**{field: row.get(column) for field, column in ASNORM_COLUMNS.items()})
        return cls(epoch=int(row["epoch"]), checkpoint_name=row.get("checkpoint_name"), eer=float(row["eer"]),
                   eer_low=row.get("eer_low"), eer_high=row.get("eer_high"), mindcf_01=row.get("mindcf_01"),
                   mindcf_005=row.get("mindcf_005"), threshold=row.get("threshold"),
                   n_trials=row.get("n_trials"), scores_path=row.get("scores_path"), asnorm=asnorm)

    def normalised(self) -> ValidationResult | None:
        """This result with its AS-norm figures in place of the raw ones (None without any)."""
        if self.asnorm is None:
            return None
        n = self.asnorm
        return dataclasses.replace(self, eer=n.eer, eer_low=n.eer_low, eer_high=n.eer_high, mindcf_01=n.mindcf_01,
                                   mindcf_005=n.mindcf_005, threshold=n.threshold)


@dataclass(frozen=True, kw_only=True)
class RecordedValidation(ValidationResult):
    """A validation as the runs database holds it: the result and the validate run that recorded it.

    Kept apart from ``ValidationResult`` because the writers give the run themselves: a result
    that carried one would write it as one of its columns.
    """

    run_id: int
    train_run_id: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RecordedValidation:
        result = ValidationResult.from_row(row)
        return cls(**{name: getattr(result, name) for name in field_names(ValidationResult)},
                   run_id=int(row["run_id"]), train_run_id=row.get("train_run_id"))


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
    """A ``runs`` row: what a run is, where its process is, how far it got and what it picked.

    ``config`` and ``command`` are decoded from their JSON; times are Unix seconds. Reads that
    leave columns out (the runs list leaves out config and command) leave their fields None.
    """

    id: int
    kind: str
    status: str
    out_dir: str | None
    exp_dir: str | None = None
    name: str | None = None
    protocol: str | None = None
    subset: str | None = None
    config: dict[str, Any] | None = None
    command: list[str] | None = None
    epoch: int | None = None
    step: int | None = None
    target_epoch: int | None = None
    parent_id: int | None = None
    # the process, and how it ended
    host: str | None = None
    pid: int | None = None
    pid_start: float | None = None
    slurm_job_id: str | None = None
    device: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    heartbeat_at: float | None = None
    reason: str | None = None
    log_path: str | None = None
    # files done of the phase under way (apply, indexing)
    progress: float | None = None
    progress_total: float | None = None
    # what a validate run picked (``best_checkpoint``: averaged weights, by name)
    best_epoch: int | None = None
    best_eer: float | None = None
    best_how: str | None = None
    best_checkpoint: str | None = None
    # a fork (``train --init-from``): the checkpoint it started from, its epoch and run
    init_from: str | None = None
    init_epoch: int | None = None
    init_run_id: int | None = None
    #: the database's change counter of this row (``runs.changed``), None for a run not read from it
    changed: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Run:
        """The run of a row of ``Store.runs``/``find_runs`` (other columns are left out)."""
        return cls(**{name: row.get(name) for name in field_names(cls)})


@dataclass(frozen=True, kw_only=True)
class DiarizationCheck:
    """A diarization check of an extraction folder (a ``diarizations`` row, read by ``row_record``).

    ``der`` is a fraction, its parts seconds of ``total``; ``num_speakers`` is ``oracle`` or how
    the number was found, ``threshold`` the clustering threshold when it was not the oracle.
    """

    der: float
    out_dir: str | None = None
    run_id: int | None = None
    epoch: int | None = None
    protocol: str | None = None
    subset: str | None = None
    num_speakers: str | None = None
    threshold: float | None = None
    missed: float | None = None
    false_alarm: float | None = None
    confusion: float | None = None
    total: float | None = None


@dataclass(frozen=True, kw_only=True)
class StaleExtraction:
    """An extraction whose epoch is no longer the one its VAL_DIR points at (a ``stale_extractions``
    row, read by ``row_record``)."""

    extraction_id: int
    apply_run_id: int
    extracted_epoch: int | None
    current_epoch: int | None
    protocol: str | None = None
    subset: str | None = None
    out_dir: str | None = None


@dataclass(frozen=True, kw_only=True)
class DataProblem:
    """A data file a run could not use, and why (a ``data_problems`` row)."""

    run_id: int
    path: str
    problem: str
    fatal: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DataProblem:
        return cls(run_id=int(row["run_id"]), path=row["path"], problem=row["problem"], fatal=bool(row["fatal"]))


R = TypeVar("R")


@functools.cache
def field_names(cls: type) -> tuple[str, ...]:
    """The field names of a record class (cached: rows are converted by the thousand)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def row_record(cls: type[R], row: Mapping[str, Any]) -> R:
    """The record of class ``cls`` from a database row: its columns by field name, others left out."""
    return cls(**{name: row[name] for name in field_names(cls) if name in row})


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
