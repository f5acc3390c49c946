"""What a run writes through: one protocol that the database, the event file and a silent rank share.

An engine command records its run through a :class:`RunWriter` without knowing which one it
holds: :class:`engine.store.Store` (the SQLite file), :class:`engine.store.events.EventWriter`
(a JSON-lines file where SQLite's WAL cannot work) or :class:`NullWriter` (ranks other than 0 of
a distributed run). Only the database can read back what was written before (``reads_back``);
``find_runs`` of the others finds nothing.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

from engine.records import Checkpoint, EpochSummary, Extraction, ValidationResult


@runtime_checkable
class RunWriter(Protocol):
    """The writer methods every run uses (arguments as ``Store``'s; typed records from ``engine.records``)."""

    #: whether ``find_runs`` and the reads see earlier records (only the database does)
    reads_back: bool

    def create_run(self, **fields: Any) -> int: ...

    def set_status(self, run_id: int, status: str, reason: str | None = None) -> None: ...

    def heartbeat(self, run_id: int, **position: Any) -> None: ...

    def add_steps(self, run_id: int, rows: list[dict[str, Any]]) -> None: ...

    def add_epoch(self, run_id: int, summary: EpochSummary) -> None: ...

    def add_checkpoint(self, run_id: int, checkpoint: Checkpoint) -> None: ...

    def remove_checkpoint(self, run_id: int, **fields: Any) -> None: ...

    def add_validation(self, run_id: int, result: ValidationResult, *, train_run_id: int | None = None) -> None: ...

    def set_best(self, run_id: int, **fields: Any) -> None: ...

    def add_extraction(self, run_id: int, extraction: Extraction) -> None: ...

    def add_diarization(self, run_id: int, **fields: Any) -> Any: ...

    def add_problem(self, run_id: int, **fields: Any) -> None: ...

    def find_runs(self, *, out_dir: str | os.PathLike[str] | None = None,
                  kind: str | None = None) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class NullWriter:
    """Takes every record and keeps none (ranks other than 0 of a distributed run)."""

    reads_back = False

    def create_run(self, **fields: Any) -> int:
        return -1

    def set_status(self, run_id: int, status: str, reason: str | None = None) -> None:
        pass

    def heartbeat(self, run_id: int, **position: Any) -> None:
        pass

    def add_steps(self, run_id: int, rows: list[dict[str, Any]]) -> None:
        pass

    def add_epoch(self, run_id: int, summary: EpochSummary) -> None:
        pass

    def add_checkpoint(self, run_id: int, checkpoint: Checkpoint) -> None:
        pass

    def remove_checkpoint(self, run_id: int, **fields: Any) -> None:
        pass

    def add_validation(self, run_id: int, result: ValidationResult, *, train_run_id: int | None = None) -> None:
        pass

    def set_best(self, run_id: int, **fields: Any) -> None:
        pass

    def add_extraction(self, run_id: int, extraction: Extraction) -> None:
        pass

    def add_diarization(self, run_id: int, **fields: Any) -> None:
        pass

    def add_problem(self, run_id: int, **fields: Any) -> None:
        pass

    def find_runs(self, *, out_dir: str | os.PathLike[str] | None = None,
                  kind: str | None = None) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass
