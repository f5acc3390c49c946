"""The runs database read as typed records: the one module where a row becomes a record.

Every part of the engine and the TUI that reads runs, checkpoints, epochs, validations,
extractions, diarization checks or data problems back reads them here (``Store.run_record``,
``Store.checkpoint_records``, ...): the column-to-field rules (JSON columns, 0/1 flags, the
AS-norm columns) are written once. The plain-row reads of ``StoreReads`` stay for what shows
rows as rows (``spkemb-engine runs --format json``, the query screen); training steps stay rows,
being many and read a column at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from engine.records import (
    ASNORM_COLUMNS,
    CALIBRATION_COLUMNS,
    AsNormFigures,
    Checkpoint,
    DataProblem,
    DiarizationCheck,
    EpochSummary,
    Extraction,
    RecordedValidation,
    Run,
    StaleExtraction,
    ValidationResult,
    row_record,
)
from engine.records.labels import decode_tags
from engine.store.reads import StoreReads


def run_of(row: Mapping[str, Any]) -> Run:
    """The run of a ``runs`` row (a summary row's other columns are left out)."""
    if "tags" in row:  # JSON text in a summary row, a list in a decoded one
        row = {**row, "tags": decode_tags(row["tags"])}
    return row_record(Run, row)


def checkpoint_of(row: Mapping[str, Any]) -> Checkpoint:
    """The checkpoint a ``checkpoints`` row holds (``averaged`` is JSON there, ``partial`` 0 or 1)."""
    averaged = row.get("averaged")
    return Checkpoint(epoch=int(row["epoch"]), step=row.get("step"), path=row["path"], partial=bool(row["partial"]),
                      name=row.get("name"), averaged=json.loads(averaged) if isinstance(averaged, str) else averaged,
                      sha256=row.get("sha256"))


def epoch_of(row: Mapping[str, Any]) -> EpochSummary:
    """The summary a ``train_epochs`` row holds (its ``time`` left out)."""
    return row_record(EpochSummary, row)


def validation_of(row: Mapping[str, Any]) -> ValidationResult:
    """The result a ``validations`` row holds (the AS-norm figures from their own columns)."""
    asnorm = None
    if row.get("eer_asnorm") is not None:
        figures: dict[str, Any] = {field: row.get(column) for field, column in ASNORM_COLUMNS.items()}
        asnorm = AsNormFigures(**figures)
    return ValidationResult(
        epoch=int(row["epoch"]), checkpoint_name=row.get("checkpoint_name"), eer=row.get("eer"),
        eer_low=row.get("eer_low"), eer_high=row.get("eer_high"), mindcf_01=row.get("mindcf_01"),
        mindcf_005=row.get("mindcf_005"), threshold=row.get("threshold"), n_trials=row.get("n_trials"),
        scores_path=row.get("scores_path"), asnorm=asnorm,
        **{name: row.get(name) for name in CALIBRATION_COLUMNS})


def recorded_validation_of(row: Mapping[str, Any]) -> RecordedValidation:
    """The result of a ``validations`` row with the validate run (and training run) that recorded it."""
    result = validation_of(row)
    return RecordedValidation(**{name: getattr(result, name) for name in result.__dataclass_fields__},
                              run_id=int(row["run_id"]), train_run_id=row.get("train_run_id"))


def problem_of(row: Mapping[str, Any]) -> DataProblem:
    """A ``data_problems`` row (``fatal`` 0 or 1)."""
    return DataProblem(run_id=int(row["run_id"]), path=row["path"], problem=row["problem"], fatal=bool(row["fatal"]))


class TypedReads(StoreReads):
    """The readers of ``Store`` that return records (see the module docstring), over its plain-row reads."""

    def run_record(self, run_id: int) -> Run | None:
        """One run, or None."""
        row = self.run(run_id)
        return None if row is None else run_of(row)

    def run_records(self, **where: Any) -> list[Run]:
        """Runs matching every given field of ``find_runs``, newest first."""
        return [run_of(r) for r in self.find_runs(**where)]

    def child_records(self, run_id: int) -> list[Run]:
        """The runs started from ``run_id`` (its validate and apply runs, its forks), newest first."""
        return [run_of(r) for r in self.children(run_id)]

    def newest_run(self, *, out_dir: str | os.PathLike[str], kind: str) -> Run | None:
        """The newest run of ``kind`` writing to ``out_dir`` (a run folder), or None."""
        runs = self.find_runs(out_dir=out_dir, kind=kind)
        return run_of(runs[0]) if runs else None

    def checkpoint_records(self, run_id: int) -> list[Checkpoint]:
        """Checkpoints of a run, oldest first."""
        return [checkpoint_of(r) for r in self.checkpoints(run_id)]

    def epoch_records(self, run_id: int) -> list[EpochSummary]:
        """Per-epoch training summaries of a run, in epoch order."""
        return [epoch_of(r) for r in self.epochs(run_id)]

    def validation_records(self, run_id: int | None = None, *,
                           train_run_id: int | None = None) -> list[RecordedValidation]:
        """The validations of a validate run, or of every validate run of a training run, by epoch."""
        return [recorded_validation_of(r) for r in self.validations(run_id, train_run_id=train_run_id)]

    def validation_results(self, run_id: int) -> list[ValidationResult]:
        """The results a validate run recorded, by epoch, without the run (as a validation makes them)."""
        return [validation_of(r) for r in self.validations(run_id)]

    def extraction_records(self, run_id: int) -> list[Extraction]:
        """Extractions recorded by an apply run, oldest first."""
        return [row_record(Extraction, r) for r in self.extractions(run_id)]

    def diarization_records(self, *, run_id: int) -> list[DiarizationCheck]:
        """Diarization checks of an apply run, newest first."""
        return [row_record(DiarizationCheck, r) for r in self.diarizations(run_id=run_id)]

    def stale_extraction_records(self) -> list[StaleExtraction]:
        """Extractions whose epoch is no longer the one their VAL_DIR points at."""
        return [row_record(StaleExtraction, r) for r in self.stale_extractions()]

    def problem_records(self, run_id: int) -> list[DataProblem]:
        """Data problems recorded by a run."""
        return [problem_of(r) for r in self.problems(run_id)]
