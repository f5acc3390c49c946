"""The writers of what runs produce: validations, the chosen epoch, extractions, diarization checks.

Part of :class:`engine.store.runs.Store` (a mixin over its ``transaction``); the run's own
lifecycle (create, status, steps, epochs, checkpoints) stays in ``runs.py``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Any

from engine.store.reads import _abs

#: the figures of a validation after adaptive S-norm (``add_validation(asnorm=...)``)
ASNORM_COLUMNS = ("cohort_size", "eer_asnorm", "eer_asnorm_low", "eer_asnorm_high", "mindcf_01_asnorm",
                  "mindcf_005_asnorm", "threshold_asnorm")


class StoreResults:
    """Writers of validation, extraction and diarization rows (see ``Store``)."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by Store
        raise NotImplementedError

    def add_validation(self, run_id: int, *, train_run_id: int | None, epoch: int, eer: float,
                       eer_low: float | None, eer_high: float | None, mindcf_01: float | None,
                       mindcf_005: float | None, threshold: float | None, n_trials: int | None,
                       scores_path: str | os.PathLike[str] | None, checkpoint_name: str | None = None,
                       asnorm: dict[str, Any] | None = None, _at: float | None = None) -> None:
        """Record (or replace) the EER of one epoch, or of one named checkpoint, on the validate run.

        ``checkpoint_name`` names averaged weights (``avg-top5``; ``epoch`` is then the last epoch
        averaged). ``asnorm`` holds the figures after adaptive S-norm: the ``ASNORM_COLUMNS``.
        """
        now = time.time() if _at is None else _at
        norm = {k: (asnorm or {}).get(k) for k in ASNORM_COLUMNS}
        with self.transaction() as conn:
            conn.execute("DELETE FROM validations WHERE run_id = ? AND epoch = ? AND checkpoint_name IS ?",
                         (run_id, epoch, checkpoint_name))
            conn.execute("INSERT INTO validations (run_id, train_run_id, epoch, eer, eer_low, "
                         "eer_high, mindcf_01, mindcf_005, threshold, n_trials, scores_path, time, "
                         f"checkpoint_name, {', '.join(norm)}) "
                         f"VALUES ({', '.join('?' * (13 + len(norm)))})",
                         (run_id, train_run_id, epoch, eer, eer_low, eer_high, mindcf_01,
                          mindcf_005, threshold, n_trials, _abs(scores_path), now, checkpoint_name,
                          *norm.values()))

    def set_best(self, run_id: int, *, epoch: int, eer: float | None, how: str,
                 checkpoint: str | None = None, _at: float | None = None) -> None:
        """Record the epoch a validate run points at (``how``: 'lowest-eer' or 'manual').

        ``checkpoint`` names averaged weights picked by hand (``epoch``: the last one averaged).
        """
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET best_epoch = ?, best_eer = ?, best_how = ?, best_checkpoint = ? "
                         "WHERE id = ?", (epoch, eer, how, checkpoint, run_id))

    def add_extraction(self, run_id: int, *, epoch: int, protocol: str, subset: str,
                       out_dir: str | os.PathLike[str], mode: str, step: float, duration: float,
                       files: int, audio_seconds: float, wall_seconds: float,
                       checkpoint: str | os.PathLike[str] | None = None,
                       checkpoint_sha256: str | None = None, checkpoint_name: str | None = None,
                       validate_run_id: int | None = None, chosen_by: str | None = None,
                       _at: float | None = None) -> None:
        """Record one finished extraction (``apply``) of a protocol subset, with its lineage.

        ``checkpoint`` (path, sha256, name) is the file the embeddings came from;
        ``validate_run_id`` the validate run of VAL_DIR whose params.yml chose it and
        ``chosen_by`` how (``params.yml`` or ``--epoch``).
        """
        now = time.time() if _at is None else _at
        with self.transaction() as conn:
            conn.execute("INSERT INTO extractions (run_id, epoch, protocol, subset, out_dir, mode, "
                         "step, duration, files, audio_seconds, wall_seconds, time, checkpoint, "
                         "checkpoint_sha256, checkpoint_name, validate_run_id, chosen_by) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (run_id, epoch, protocol, subset, _abs(out_dir), mode, step, duration,
                          files, audio_seconds, wall_seconds, now, _abs(checkpoint),
                          checkpoint_sha256, checkpoint_name, validate_run_id, chosen_by))

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
            diarization_id = int(cursor.lastrowid)
            conn.executemany(
                "INSERT INTO diarization_files (diarization_id, uri, der, missed, false_alarm, confusion, "
                "total, speakers, speakers_found, rttm_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(diarization_id, f["uri"], f["der"], f["missed"], f["false_alarm"], f["confusion"],
                  f["total"], f.get("speakers"), f.get("speakers_found"), _abs(f.get("rttm_path")))
                 for f in files])
            return diarization_id
