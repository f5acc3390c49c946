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
    """The writer methods every run uses (arguments as ``Store``'s; typed records from ``engine.records``).

    The keyword arguments are spelled out as ``Store`` takes them (its private ``_at`` left out), so
    that a type checker holds every call to the database's signature; the event file and the silent
    writer take them as ``**fields``.
    """

    #: whether ``find_runs`` and the reads see earlier records (only the database does)
    reads_back: bool

    def create_run(self, *, kind: str, exp_dir: str | os.PathLike[str] | None,
                   out_dir: str | os.PathLike[str] | None, protocol: str | None,
                   subset: str | None, config: dict[str, Any] | None, command: list[str],
                   device: str | None, target_epoch: int | None = None,
                   parent_id: int | None = None, name: str | None = None,
                   log_path: str | os.PathLike[str] | None = None, init_from: str | None = None,
                   init_epoch: int | None = None, init_run_id: int | None = None,
                   init_sha256: str | None = None, status: str = "running", seed: int | None = None,
                   run_group: str | None = None, tags: list[str] | None = None,
                   note: str | None = None) -> int: ...

    def set_status(self, run_id: int, status: str, reason: str | None = None) -> None: ...

    def heartbeat(self, run_id: int, *, epoch: int | None = None, step: int | None = None,
                  progress: float | None = None, progress_total: float | None = None) -> None: ...

    def add_steps(self, run_id: int, rows: list[dict[str, Any]]) -> None: ...

    def add_epoch(self, run_id: int, summary: EpochSummary) -> None: ...

    def add_checkpoint(self, run_id: int, checkpoint: Checkpoint) -> None: ...

    def remove_checkpoint(self, run_id: int, *, path: str | os.PathLike[str]) -> None: ...

    def add_validation(self, run_id: int, result: ValidationResult, *, train_run_id: int | None = None) -> None: ...

    def set_best(self, run_id: int, *, epoch: int | None, eer: float | None, how: str,
                 checkpoint: str | None = None) -> None: ...

    def add_extraction(self, run_id: int, extraction: Extraction) -> None: ...

    def add_diarization(self, run_id: int, *, out_dir: str | os.PathLike[str], epoch: int | None,
                        protocol: str, subset: str, collar: float, skip_overlap: bool,
                        num_speakers: str, threshold: float | None, tuned_on: str | None,
                        linkage: str, frame_rule: str, der: float, missed: float,
                        false_alarm: float, confusion: float, total: float,
                        files: list[dict[str, Any]]) -> Any: ...

    def add_problem(self, run_id: int, *, path: str | os.PathLike[str], problem: str, fatal: bool) -> None: ...

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
