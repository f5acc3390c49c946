"""The writers of a run at work: its heartbeat and position, training steps and epochs, checkpoints,
and the data files it could not use.

Part of :class:`engine.store.runs.Store` (a mixin over its ``transaction``); the run's lifecycle
(create, reopen, labels, status, lost) stays in ``runs.py``, what runs produce in ``results.py``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Any

from engine.records import Checkpoint, EpochSummary
from engine.store.reads import _abs


class StoreProgress:
    """Writers of heartbeats, step, epoch, checkpoint and data-problem rows (see ``Store``)."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by Store
        raise NotImplementedError

    def heartbeat(self, run_id: int, *, epoch: int | None = None, step: int | None = None,
                  progress: float | None = None, progress_total: float | None = None,
                  _at: float | None = None) -> None:
        """Say the run is alive, with its position; a run marked ``lost`` becomes ``running`` again."""
        now = time.time() if _at is None else _at
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET heartbeat_at = ?, epoch = COALESCE(?, epoch), "
                "step = COALESCE(?, step), progress = COALESCE(?, progress), "
                "progress_total = COALESCE(?, progress_total), "
                "ended_at = CASE status WHEN 'lost' THEN NULL ELSE ended_at END, "
                "reason = CASE status WHEN 'lost' THEN NULL ELSE reason END, "
                "status = CASE status WHEN 'lost' THEN 'running' ELSE status END WHERE id = ?",
                (now, epoch, step, progress, progress_total, run_id))

    def add_steps(self, run_id: int, rows: list[dict[str, Any]], *, _at: float | None = None) -> None:
        """Insert a batch of training steps in one transaction; also beats the heart.

        Each row: ``step`` (required), ``epoch``, ``loss``, ``lr``, ``margin``, ``chunks_per_s``,
        ``time`` (unix seconds, default now).
        """
        if not rows:
            return
        now = time.time() if _at is None else _at
        values = [(run_id, r["step"], r.get("epoch"), r.get("loss"), r.get("lr"), r.get("margin"),
                   r.get("chunks_per_s"), r.get("time", now)) for r in rows]
        last = max(rows, key=lambda r: r["step"])
        with self.transaction() as conn:
            conn.executemany("INSERT INTO train_steps (run_id, step, epoch, loss, lr, margin, chunks_per_s, "
                             "time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
            conn.execute("UPDATE runs SET heartbeat_at = MAX(COALESCE(heartbeat_at, 0), ?), "
                         "step = ?, epoch = COALESCE(?, epoch) WHERE id = ?",
                         (now, last["step"], last.get("epoch"), run_id))

    def add_epoch(self, run_id: int, summary: EpochSummary, *, _at: float | None = None) -> None:
        """Record (or replace, after a resume) the summary of one training epoch."""
        now = time.time() if _at is None else _at
        with self.transaction() as conn:
            conn.execute("DELETE FROM train_epochs WHERE run_id = ? AND epoch = ?", (run_id, summary.epoch))
            conn.execute("INSERT INTO train_epochs (run_id, epoch, loss, lr, chunks_per_s, seconds, "
                         "time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (run_id, summary.epoch, summary.loss, summary.lr, summary.chunks_per_s,
                          summary.seconds, now))

    def add_checkpoint(self, run_id: int, checkpoint: Checkpoint, *, _at: float | None = None) -> None:
        """Record a checkpoint already on disk (the row is the commit marker watchers trust)."""
        now = time.time() if _at is None else _at
        c = checkpoint
        with self.transaction() as conn:
            # earlier rows of the same file (resume.pt written again, an epoch's file recorded again
            # after a resume) describe content that is gone
            conn.execute("DELETE FROM checkpoints WHERE run_id = ? AND path = ?", (run_id, _abs(c.path)))
            conn.execute("INSERT INTO checkpoints (run_id, epoch, step, path, partial, time, name, averaged, "
                         "sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (run_id, c.epoch, c.step, _abs(c.path), int(bool(c.partial)), now, c.name,
                          None if c.averaged is None else json.dumps([int(e) for e in c.averaged]), c.sha256))

    def remove_checkpoint(self, run_id: int, *, path: str | os.PathLike[str],
                          _at: float | None = None) -> None:
        """Forget the run's rows of a checkpoint file about to be deleted (a superseded resume.pt)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM checkpoints WHERE run_id = ? AND path = ?", (run_id, _abs(path)))

    def add_problem(self, run_id: int, *, path: str | os.PathLike[str], problem: str, fatal: bool,
                    _at: float | None = None) -> None:
        """Record a data file that could not be used, and why."""
        now = time.time() if _at is None else _at
        with self.transaction() as conn:
            conn.execute("INSERT INTO data_problems (run_id, path, problem, fatal, time) "
                         "VALUES (?, ?, ?, ?, ?)", (run_id, os.fspath(path), problem, int(fatal), now))
