"""Sweeps, their trials and the device queue in the runs database (migration m010).

Part of :class:`engine.store.runs.Store` (a mixin over its ``transaction`` and ``_read``). A queued
run is a ``runs`` row with status ``queued`` and a ``queue_entries`` row saying how to start it.
Starting one happens once: the queue *claims* the entry (a fresh token, in one transaction that
also checks the run is still queued and unclaimed), starts the child with the token in its
environment, and the child *adopts* the run only while the token is still the entry's. A queue that
died between claim and start leaves a claim that the next queue releases (no child carries the
token), so the run is started later, once.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from engine.errors import StoreError
from engine.store import liveness
from engine.store.db import inserted_id
from engine.store.reads import _abs, json_column
from engine.version import software

#: the environment variable that hands a queued run's claim to the ``train`` the queue starts
CLAIM_VAR = "SPKEMB_QUEUE_CLAIM"


@dataclass(frozen=True)
class NewTrial:
    """One trial to record: its folder, the swept values, the config diff and the queued command."""

    number: int
    exp_dir: str
    out_dir: str
    params: dict[str, Any]
    seed: int
    diff: list[tuple[str, Any, Any]]
    config: dict[str, Any]
    #: the ``spkemb-engine train`` argument list (after the program) that runs it; None: not queued
    train: list[str] | None
    #: the ``spkemb-engine validate`` argument list started beside it (None: no validation)
    validate: list[str] | None
    target_epoch: int | None
    optuna_trial: int | None = None




def _as_the_queue_sees_it(device: str | None, slot: str | None) -> str | None:
    """The device a queued run records: its slot's GPU as the queue numbers it (``cuda:1``), not the
    ``cuda:0`` the run sees alone under ``CUDA_VISIBLE_DEVICES`` (resume, validate and apply of it from
    the TUI or a shell, numbered as the queue's, go to that GPU then)."""
    gpu = (slot or "").partition("/")[0]
    if device is None or not gpu.startswith("cuda:"):
        return device
    return re.sub(r"^cuda(:\d+)?", gpu, device)

#: the validations ``v`` (of validate runs ``vr``, ``_SWEEP_JOIN``) a sweep reads of a trial's run ``{run}``:
#: its epochs from 1 (not averaged weights) scored in the VAL_DIR of the first validation started beside
#: it, the sweep's own (a user's validation on another trial list is not the sweep's figure)
_SWEEP_JOIN = "validations v JOIN runs vr ON vr.id = v.run_id"
_SWEEP_VALIDATIONS = (
    "v.train_run_id = {run} AND v.checkpoint_name IS NULL AND v.epoch >= 1 AND vr.out_dir = (SELECT f.out_dir "
    "FROM runs f WHERE f.parent_id = {run} AND f.kind = 'validate' ORDER BY f.id LIMIT 1)")


@dataclass(frozen=True)
class Claim:
    """A queued run this queue may now start (``token`` goes to the child in ``CLAIM_VAR``)."""

    run_id: int
    token: str
    slot: str
    train: list[str]
    validate: list[str] | None


class StoreSweeps:
    """Writers and readers of sweeps, trials, queue entries and queue processes (see ``Store``)."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by Store
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:  # provided by StoreReads
        raise NotImplementedError

    # ---- sweeps and trials ---------------------------------------------------------
    def create_sweep(self, *, name: str, method: str, base_config: str, sweep_dir: str, protocol: str,
                     subset: str, space: dict[str, Any], seeds: int, epochs: int | None, planned: int,
                     slots: str, prune: str, prune_after: int, run_group: str, command: list[str]) -> int:
        """Record a sweep (``command``: the ``sweep`` argument list, read back to make later trials); returns its id."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO sweeps (name, method, base_config, sweep_dir, protocol, subset, space, seeds, epochs, "
                "planned, slots, prune, prune_after, run_group, command, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, method, _abs(base_config), _abs(sweep_dir), protocol, subset, json.dumps(space), seeds,
                 epochs, planned, slots, prune, prune_after, run_group, json.dumps(command), time.time()))
            return inserted_id(cursor)

    def set_sweep_script(self, sweep_id: int, *, script: str, slurm_job_id: str | None) -> None:
        """The SLURM array script of a ``--sbatch`` sweep, and its job id once submitted."""
        with self.transaction() as conn:
            conn.execute("UPDATE sweeps SET script = ?, slurm_job_id = ? WHERE id = ?",
                         (_abs(script), slurm_job_id, sweep_id))

    def add_trial(self, sweep_id: int, trial: NewTrial, *, run_group: str, protocol: str, subset: str) -> int:
        """Record a trial and, when it has a ``train`` command, its ``queued`` run; returns the trial id."""
        now = time.time()
        with self.transaction() as conn:
            run_id = None
            if trial.train is not None:
                cursor = conn.execute(
                    "INSERT INTO runs (name, kind, status, exp_dir, out_dir, protocol, subset, config, command, "
                    "target_epoch, seed, run_group, heartbeat_at) VALUES (?, 'train', 'queued', ?, ?, ?, ?, ?, ?, "
                    "?, ?, ?, ?)",
                    (os.path.basename(trial.exp_dir), _abs(trial.exp_dir), _abs(trial.out_dir), protocol, subset,
                     json.dumps(trial.config), json.dumps(["spkemb-engine", *trial.train]), trial.target_epoch,
                     trial.seed, run_group, now))
                run_id = inserted_id(cursor)
                conn.execute("INSERT INTO queue_entries (run_id, validate, queued_at) VALUES (?, ?, ?)",
                             (run_id, None if trial.validate is None else json.dumps(trial.validate), now))
            cursor = conn.execute(
                "INSERT INTO sweep_trials (sweep_id, number, exp_dir, out_dir, params, seed, diff, run_id, "
                "optuna_trial, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sweep_id, trial.number, _abs(trial.exp_dir), _abs(trial.out_dir), json.dumps(trial.params),
                 trial.seed, json.dumps([list(d) for d in trial.diff], default=str), run_id, trial.optuna_trial, now))
            return inserted_id(cursor)

    def set_pruned(self, trial_id: int, *, epoch: int, reason: str) -> None:
        """Why a trial was pruned (its run is stopped through the stop path, then given this reason)."""
        with self.transaction() as conn:
            conn.execute("UPDATE sweep_trials SET pruned_epoch = ?, prune_reason = ? WHERE id = ?",
                         (epoch, reason, trial_id))

    def sweeps(self) -> list[dict[str, Any]]:
        """Every sweep, newest first (``space`` decoded)."""
        rows = self._read("SELECT * FROM sweeps ORDER BY id DESC")
        for row in rows:
            row["space"] = _decoded(row["space"], {})
            row["command"] = _decoded(row["command"], [])
        return rows

    def sweep(self, sweep_id: int) -> dict[str, Any] | None:
        return next((s for s in self.sweeps() if s["id"] == sweep_id), None)

    def sweep_trials(self, sweep_id: int) -> list[dict[str, Any]]:
        """A sweep's trials in order, each with its training run's status, reason, device and slot, and the
        lowest EER the sweep's validation of that run gave (``best_eer``; NULL before any validation).

        A trial of a SLURM array has no queued run: its run is the newest training run of its TRN_DIR.
        """
        rows = self._read(
            "SELECT t.*, r.id AS train_run_id, r.status, r.reason, r.device, r.epoch, r.target_epoch, "
            f"q.slot, q.claim, (SELECT MIN(v.eer) FROM {_SWEEP_JOIN} WHERE {_SWEEP_VALIDATIONS.format(run='r.id')}) "
            "AS best_eer "
            "FROM sweep_trials t LEFT JOIN runs r ON r.id = COALESCE(t.run_id, (SELECT MAX(id) FROM runs "
            "WHERE kind = 'train' AND out_dir = t.out_dir)) LEFT JOIN queue_entries q ON q.run_id = r.id "
            "WHERE t.sweep_id = ? ORDER BY t.number", (sweep_id,))
        for row in rows:
            row["params"] = _decoded(row["params"], {})
            row["diff"] = [tuple(d) for d in _decoded(row["diff"], []) if isinstance(d, list)]
        return rows

    def trial_of_run(self, run_id: int) -> dict[str, Any] | None:
        """The sweep trial a queued run trains (id, sweep_id, number, optuna_trial, prune_reason), if any."""
        rows = self._read("SELECT id, sweep_id, number, optuna_trial, prune_reason FROM sweep_trials WHERE run_id = ?",
                          (run_id,))
        return rows[0] if rows else None

    def trial_eers(self, sweep_id: int) -> dict[int, dict[int, float]]:
        """EER of each trial's training run by epoch, as the sweep's validation gave it: ``{trial id:
        {epoch: eer}}`` (the intermediate values pruning compares)."""
        rows = self._read(
            f"SELECT t.id AS trial, v.epoch, MIN(v.eer) AS eer FROM sweep_trials t, {_SWEEP_JOIN} "
            f"WHERE t.sweep_id = ? AND {_SWEEP_VALIDATIONS.format(run='t.run_id')} GROUP BY t.id, v.epoch",
            (sweep_id,))
        out: dict[int, dict[int, float]] = {}
        for row in rows:
            out.setdefault(row["trial"], {})[row["epoch"]] = row["eer"]
        return out

    def best_epochs(self, run_ids: Sequence[int]) -> dict[int, int]:
        """The epoch of lowest EER the sweep's validation gave each training run (the earlier on a tie)."""
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        best: dict[int, int] = {}
        for row in self._read(f"SELECT v.train_run_id, v.epoch FROM {_SWEEP_JOIN} WHERE v.train_run_id IN "
                              f"({marks}) AND {_SWEEP_VALIDATIONS.format(run='v.train_run_id')} "
                              "ORDER BY v.eer, v.epoch", list(run_ids)):
            best.setdefault(row["train_run_id"], row["epoch"])
        return best

    # ---- the queue ---------------------------------------------------------------------
    def queue_entries(self, *, open_only: bool = True) -> list[dict[str, Any]]:
        """Queue entries with their run's status, oldest first (``validate`` decoded)."""
        where = "WHERE q.ended_at IS NULL" if open_only else ""
        rows = self._read(f"SELECT q.*, r.status, r.command, r.host, r.pid, r.pid_start, r.exp_dir, r.out_dir "
                          f"FROM queue_entries q JOIN runs r ON r.id = q.run_id {where} "
                          "ORDER BY q.queued_at, q.run_id")
        for row in rows:
            row["validate"] = _decoded(row["validate"], None)
            row["command"] = _decoded(row["command"], None)
        return rows

    def claim(self, slot: str, queue_id: int, *, run_id: int | None = None) -> Claim | None:
        """Claim the oldest queued, unclaimed run (or ``run_id``) for ``slot``; None when there is none.

        A run whose stored command cannot be read (a hand edit, a bad disk) is recorded failed with
        the reason and taken off the queue, and the next one is claimed: the queue goes on.
        """
        token = uuid.uuid4().hex
        while True:
            with self.transaction() as conn:
                row = conn.execute(
                    "SELECT q.run_id, r.command, q.validate FROM queue_entries q JOIN runs r ON r.id = q.run_id "
                    "WHERE q.claim IS NULL AND q.ended_at IS NULL AND r.status = 'queued' "
                    "AND (? IS NULL OR q.run_id = ?) ORDER BY q.queued_at, q.run_id LIMIT 1",
                    (run_id, run_id)).fetchone()
                if row is None:
                    return None
                command, validate = _decoded(row[1], None), _decoded(row[2], None)
                if not _words(command) or not (validate is None or _words(validate)):
                    now = time.time()
                    conn.execute("UPDATE runs SET status = 'failed', ended_at = ?, reason = ? WHERE id = ?",
                                 (now, "its queued command in the runs database is damaged (not a JSON list of "
                                  "words): queue the run again", row[0]))
                    conn.execute("UPDATE queue_entries SET ended_at = ? WHERE run_id = ?", (now, row[0]))
                    continue
                conn.execute("UPDATE queue_entries SET claim = ?, slot = ?, queue_id = ?, started_at = ?, "
                             "child_pid = NULL, child_start = NULL, validate_pid = NULL, validate_start = NULL "
                             "WHERE run_id = ?",
                             (token, slot, queue_id, time.time(), row[0]))
            return Claim(run_id=row[0], token=token, slot=slot, train=command[1:], validate=validate)

    def set_child(self, run_id: int, *, pid: int, validate: bool = False) -> None:
        """The pid (and its start time) of the training (or validation) child started for an entry."""
        columns = ("validate_pid", "validate_start") if validate else ("child_pid", "child_start")
        with self.transaction() as conn:
            conn.execute(f"UPDATE queue_entries SET {columns[0]} = ?, {columns[1]} = ? WHERE run_id = ?",
                         (pid, liveness.process_start_time(pid), run_id))

    def release(self, run_id: int) -> None:
        """Give a claimed run that no child adopted back to the queue (it starts again later, once)."""
        with self.transaction() as conn:
            conn.execute("UPDATE queue_entries SET claim = NULL, slot = NULL, queue_id = NULL, started_at = NULL, "
                         "child_pid = NULL, child_start = NULL WHERE run_id = ?", (run_id,))

    def cancel_queued(self, run_id: int) -> bool:
        """Take a queued run no queue has claimed off the queue: ``stopped``, ``cancelled while queued``;
        False when it is not (or no longer) waiting."""
        now = time.time()
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = 'stopped', reason = 'cancelled while queued', ended_at = ? WHERE id = ? "
                "AND status = 'queued' AND id IN (SELECT run_id FROM queue_entries WHERE claim IS NULL)", (now, run_id))
            if cursor.rowcount:
                conn.execute("UPDATE queue_entries SET ended_at = ? WHERE run_id = ?", (now, run_id))
            return bool(cursor.rowcount)

    def end_sweep(self, sweep_id: int) -> list[int]:
        """Make no more trials of a sweep (an Optuna sweep asks for its next ones as slots free up: it is
        planned as far as it got) and take its queued runs no queue has claimed off the queue; returns
        those runs' ids."""
        with self.transaction() as conn:
            conn.execute("UPDATE sweeps SET planned = (SELECT COUNT(*) FROM sweep_trials WHERE sweep_id = ?) "
                         "WHERE id = ?", (sweep_id, sweep_id))
            queued = [int(r[0]) for r in conn.execute(
                "SELECT t.run_id FROM sweep_trials AS t JOIN runs AS r ON r.id = t.run_id WHERE t.sweep_id = ? "
                "AND r.status = 'queued' ORDER BY t.number", (sweep_id,))]
        return [run_id for run_id in queued if self.cancel_queued(run_id)]

    def end_entry(self, run_id: int) -> None:
        """The entry's children are gone: its slot is free."""
        with self.transaction() as conn:
            conn.execute("UPDATE queue_entries SET ended_at = ? WHERE run_id = ?", (time.time(), run_id))

    def adopt_queued(self, token: str, *, command: list[str], device: str | None, target_epoch: int | None,
                     config: dict[str, Any] | None, status: str = "indexing",
                     log_path: str | os.PathLike[str] | None = None) -> int:
        """In the ``train`` the queue started: take over the queued run claimed with ``token`` (recording
        this process and its software); StoreError when the claim is no longer the run's (the queue gave
        it back after losing track of this process): this process must not train it."""
        pid, now = os.getpid(), time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT q.run_id, q.slot FROM queue_entries q JOIN runs r ON r.id = q.run_id "
                               "WHERE q.claim = ? AND r.status = 'queued'", (token,)).fetchone()
            if row is None:
                raise StoreError("the queued run this process was started for is no longer claimed by it (the "
                                 "queue gave it back, or another process took it): not training it twice")
            device = _as_the_queue_sees_it(device, row[1])
            conn.execute(
                "UPDATE runs SET status = ?, host = ?, pid = ?, pid_start = ?, slurm_job_id = ?, command = ?, "
                "device = ?, started_at = ?, heartbeat_at = ?, target_epoch = COALESCE(?, target_epoch), "
                "config = COALESCE(?, config), log_path = COALESCE(?, log_path), software = ? WHERE id = ?",
                (status, liveness.hostname(), pid, liveness.process_start_time(pid), os.environ.get("SLURM_JOB_ID"),
                 json.dumps([str(c) for c in command]), device, now, now, target_epoch,
                 None if config is None else json.dumps(config, default=str), _abs(log_path),
                 json.dumps(software()), row[0]))
            conn.execute("UPDATE queue_entries SET child_pid = ?, child_start = ? WHERE run_id = ?",
                         (pid, liveness.process_start_time(pid), row[0]))
            return int(row[0])

    def start_queue(self, slots: str) -> int:
        """Record this process as the queue of the database; returns its queue id."""
        pid, now = os.getpid(), time.time()
        with self.transaction() as conn:
            cursor = conn.execute("INSERT INTO queues (host, pid, pid_start, slots, started_at, heartbeat_at) "
                                  "VALUES (?, ?, ?, ?, ?, ?)",
                                  (liveness.hostname(), pid, liveness.process_start_time(pid), slots, now, now))
            return inserted_id(cursor)

    def beat_queue(self, queue_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE queues SET heartbeat_at = ? WHERE id = ?", (time.time(), queue_id))

    def end_queue(self, queue_id: int, reason: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE queues SET ended_at = ?, reason = ? WHERE id = ?", (time.time(), reason, queue_id))

    def live_queue(self) -> dict[str, Any] | None:
        """The queue process of this database that still runs (pid + start time), if any."""
        for row in self._read("SELECT * FROM queues WHERE ended_at IS NULL ORDER BY id DESC"):
            if liveness.is_alive(row["host"], row["pid"], row["pid_start"]):
                return row
        return None


def _words(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(a, str) for a in value)


def _decoded(text: Any, default: Any) -> Any:
    """A JSON column of a sweep or queue row; ``default`` when empty, or damaged (a hand edit, a bad
    disk): the sweep still shows, with what could be read."""
    if text is None or text == "":
        return default
    value, why = json_column(text)
    return default if why is not None or (default is not None and type(value) is not type(default)) else value
