"""The writers of what runs produce: validations, the chosen epoch, extractions, diarization checks.

Part of :class:`engine.store.runs.Store` (a mixin over its ``transaction``); the run's own
lifecycle (create, status) stays in ``runs.py``, its steps, epochs and checkpoints in ``progress_rows.py``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Any

from engine.errors import StoreError
from engine.records import Extraction, ValidationResult, as_args
from engine.store.db import inserted_id
from engine.store.reads import _abs


class StoreResults:
    """Writers of validation, extraction and diarization rows (see ``Store``)."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by Store
        raise NotImplementedError

    def add_validation(self, run_id: int, result: ValidationResult, *, train_run_id: int | None = None,
                       _at: float | None = None) -> None:
        """Record (or replace) the figures of one epoch, or of one named checkpoint, on the validate run.

        ``train_run_id`` is the training run that wrote the checkpoint (None: not recorded here).
        """
        if result.epoch is None:
            raise StoreError(f"the validation of {result.checkpoint} names no epoch: record the last "
                             "epoch its weights hold")
        now = time.time() if _at is None else _at
        columns = {"run_id": run_id, "train_run_id": train_run_id, **result.columns(), "time": now}
        columns["scores_path"] = _abs(columns["scores_path"])
        with self.transaction() as conn:
            conn.execute("DELETE FROM validations WHERE run_id = ? AND epoch = ? AND checkpoint_name IS ?",
                         (run_id, result.epoch, result.checkpoint_name))
            conn.execute(f"INSERT INTO validations ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         tuple(columns.values()))

    def set_best(self, run_id: int, *, epoch: int | None, eer: float | None, how: str,
                 checkpoint: str | None = None, _at: float | None = None) -> None:
        """Record the epoch a validate run points at (``how``: 'lowest-eer' or 'manual').

        ``checkpoint`` names averaged weights picked by hand; ``epoch`` is then the last epoch they
        average, or None when that is not known (weights picked from their scores alone, whose
        params.yml names them without it).
        """
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET best_epoch = ?, best_eer = ?, best_how = ?, best_checkpoint = ? "
                         "WHERE id = ?", (epoch, eer, how, checkpoint, run_id))

    def add_extraction(self, run_id: int, extraction: Extraction, *, _at: float | None = None) -> None:
        """Record one finished extraction (``apply``) of a protocol subset, with its lineage."""
        now = time.time() if _at is None else _at
        columns = {"run_id": run_id, **as_args(extraction), "time": now}
        for key in ("out_dir", "checkpoint"):
            columns[key] = _abs(columns[key])
        with self.transaction() as conn:
            conn.execute(f"INSERT INTO extractions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         tuple(columns.values()))

    def add_diarization(self, run_id: int | None, *, out_dir: str | os.PathLike[str], epoch: int | None,
                        protocol: str, subset: str, collar: float, skip_overlap: bool,
                        num_speakers: str, threshold: float | None, tuned_on: str | None,
                        linkage: str, frame_rule: str, der: float, missed: float,
                        false_alarm: float, confusion: float, total: float,
                        files: list[dict[str, Any]], _at: float | None = None) -> int:
        """Record a diarization check of the extraction folder ``out_dir``; returns its id.

        ``run_id`` is the apply run that wrote the embeddings (None: taken from the newest
        extraction recorded for ``out_dir`` and ``subset``, if any). Components are seconds;
        ``der`` a fraction. ``files``: one dict per file with ``uri``, ``der``, ``missed``,
        ``false_alarm``, ``confusion``, ``total``, ``speakers``, ``speakers_found``, ``rttm_path``.
        """
        now = time.time() if _at is None else _at
        with self.transaction() as conn:
            found = conn.execute("SELECT id, run_id FROM extractions WHERE out_dir = ? AND subset = ? "
                                 "AND protocol = ? ORDER BY id DESC LIMIT 1",
                                 (_abs(out_dir), subset, protocol)).fetchone()
            extraction_id = found[0] if found else None
            if run_id is None and found:
                run_id = found[1]
            cursor = conn.execute(
                "INSERT INTO diarizations (run_id, extraction_id, out_dir, epoch, protocol, subset, collar, "
                "skip_overlap, num_speakers, threshold, tuned_on, linkage, frame_rule, files, der, missed, "
                "false_alarm, confusion, total, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, ?)",
                (run_id, extraction_id, _abs(out_dir), epoch, protocol, subset, collar, int(skip_overlap),
                 num_speakers, threshold, tuned_on, linkage, frame_rule, len(files), der, missed,
                 false_alarm, confusion, total, now))
            diarization_id = inserted_id(cursor)
            conn.executemany(
                "INSERT INTO diarization_files (diarization_id, uri, der, missed, false_alarm, confusion, "
                "total, speakers, speakers_found, rttm_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(diarization_id, f["uri"], f["der"], f["missed"], f["false_alarm"], f["confusion"],
                  f["total"], f.get("speakers"), f.get("speakers_found"), _abs(f.get("rttm_path")))
                 for f in files])
            return diarization_id
