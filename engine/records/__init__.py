"""What runs record: typed records that the engine hands to its writers and reads back.

torch-free and free of the database: the writers (``engine.store.writer.RunWriter``: the
SQLite store, the event file) take these records, the validation builds and compares them,
the TUI reads them back from the database (``engine.store.typed_reads``, the one place a row
becomes a record). Field names are the column names
(``runs``, ``validations``, ``train_epochs``, ``checkpoints``, ...) and the keyword arguments of the event
files' ``args`` (format 1), so that a record crosses each boundary without being renamed;
``params.yml``'s own keys (``equal_error_rate``, ``min_dcf_0.01``) are spelled only where
that file is read and written (``engine.validation.params``).
"""

from engine.records.fields import PathText, as_args, field_names, from_args, record_class, row_record
from engine.records.runs import DataProblem, DiarizationCheck, Extraction, Run, RunDevice, StaleExtraction
from engine.records.training import Checkpoint, EpochSummary
from engine.records.validation import (
    ASNORM_COLUMNS,
    CALIBRATION_COLUMNS,
    AsNormFigures,
    Figures,
    RecordedValidation,
    ValidationResult,
    checkpoint_list,
    checkpoint_title,
)

__all__ = [
    "ASNORM_COLUMNS", "CALIBRATION_COLUMNS", "AsNormFigures", "Checkpoint", "DataProblem", "DiarizationCheck",
    "EpochSummary", "Extraction",
    "Figures", "PathText", "RecordedValidation", "Run", "RunDevice", "StaleExtraction", "ValidationResult", "as_args",
    "checkpoint_list", "checkpoint_title", "field_names", "from_args", "record_class", "row_record",
]
