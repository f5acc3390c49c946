"""Reads of the runs database for the TUI, run in worker threads.

Each call opens the store, reads in short transactions and closes it again: no cursor or
connection is held across refreshes, so WAL checkpoints are never held back (DESIGN.md,
"How the database is written").
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from engine.layout import EVENT_GLOBS
from engine.store import open_store
from engine.store.importing import import_events

#: where runs whose database was on a network filesystem leave their event files, under an EXP_DIR
EVENT_FILES = EVENT_GLOBS


@contextmanager
def store_at(path: Path, readonly: bool = True) -> Iterator[Any]:
    store = open_store(path, readonly=readonly)
    try:
        yield store
    finally:
        store.close()


def _best_by_train_run(runs: list[dict]) -> dict[int, dict]:
    """The validate run with the best EER for each training run it validates."""
    best: dict[int, dict] = {}
    for r in runs:
        parent = r.get("parent_id")
        if r.get("kind") == "validate" and parent is not None and r.get("best_eer") is not None:
            if parent not in best or r["best_eer"] < best[parent]["best_eer"]:
                best[parent] = r
    return best


def _with_derived(runs: list[dict]) -> list[dict]:
    """The rows a runs list shows: a training run takes its validation's best EER and epoch."""
    best = _best_by_train_run(runs)
    out = []
    for run in runs:
        row = dict(run)
        if row.get("kind") == "train":
            val = best.get(int(row["id"]))
            if val is not None:
                row["best_eer"], row["best_epoch"] = val["best_eer"], val["best_epoch"]
                row["best_checkpoint"] = val.get("best_checkpoint")
        else:
            row["last_loss"] = None
        out.append(row)
    return out


def read_runs(path: Path) -> list[dict]:
    """Every run with its last loss and best EER (a training run takes its validation's best)."""
    with store_at(path) as store:
        rows, _, _ = store.runs_changed_since(0)
    return _with_derived(rows)


class RunsFeed:
    """Every run of one database, kept up to date by reading only the runs changed since the
    last read (``runs.changed``, bumped by triggers on every write).

    A refresh of a workspace of a thousand runs of which ten are training reads ten rows. The
    whole table is read again when the file no longer matches what was seen: another file at
    the path, fewer runs than known (rows deleted) or a change counter gone backwards.
    Safe to call from several worker threads: reads are serialised.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._runs: dict[int, dict] = {}
        self._changed = 0
        self._file: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def read(self) -> list[dict]:
        """Every run, newest first, as ``read_runs`` gives them."""
        with self._lock, store_at(self.path) as store:
            stat = os.stat(self.path)
            if (stat.st_dev, stat.st_ino) != self._file:
                self._file, self._runs, self._changed = (stat.st_dev, stat.st_ino), {}, 0
            rows, newest, count = store.runs_changed_since(self._changed)
            if newest < self._changed or len(self._runs.keys() | {int(r["id"]) for r in rows}) != count:
                self._runs = {}
                rows, newest, count = store.runs_changed_since(0)
            for row in rows:
                self._runs[int(row["id"])] = row
            self._changed = newest
            runs = [self._runs[k] for k in sorted(self._runs, reverse=True)]
        return _with_derived(runs)


def ingest_events(path: Path, exp_dirs: list[Path]) -> int:
    """Bring the event files of these experiments into the database (DESIGN.md: runs on NFS,
    Lustre, GPFS or BeeGFS write them instead); idempotent. Returns the records added."""
    files = sorted({f for exp in exp_dirs for pattern in EVENT_FILES for f in Path(exp).glob(pattern)})
    if not files:
        return 0
    with store_at(path, readonly=False) as store:
        return sum(import_events(f, store)["records"] for f in files)


def mark_lost(path: Path) -> list[int]:
    """Turn running runs whose process is gone into ``lost`` (a short write transaction)."""
    with store_at(path, readonly=False) as store:
        return list(store.mark_lost())


def read_detail(path: Path, run_id: int, since_step: int) -> dict[str, Any]:
    """One run and everything recorded about it, for the run detail screen.

    For a training run: its steps after ``since_step``, epochs, checkpoints, the
    validations of its checkpoints and the validate/apply runs that hang off it.
    """
    with store_at(path) as store:
        run = store.run(run_id)
        if run is None:
            return {"run": None}
        train = run
        if run.get("kind") != "train" and run.get("parent_id") is not None:
            parent = store.run(int(run["parent_id"]))
            if parent is not None and parent.get("kind") == "train":
                train = parent
            elif parent is not None and parent.get("parent_id") is not None:
                grand = store.run(int(parent["parent_id"]))
                train = grand if grand is not None and grand.get("kind") == "train" else train
        train_id = int(train["id"])
        all_runs = store.runs()
        children = [r for r in all_runs if r.get("parent_id") == train_id]
        grandchildren = [r for r in all_runs
                         if r.get("parent_id") in {c["id"] for c in children}]
        validations = store.validations(train_run_id=train_id)
        # a fork's parent (train --init-from), for its lineage and config diff
        init_parent = store.run(int(train["init_run_id"])) if train.get("init_run_id") is not None else None
        applies = [r for r in children + grandchildren if r.get("kind") == "apply"]
        return {
            "init_parent": init_parent,
            "run": run,
            "train": train,
            "steps": store.steps(train_id, since_step=since_step),
            "epochs": store.epochs(train_id),
            "checkpoints": store.checkpoints(train_id),
            "validations": validations,
            "validators": [r for r in children if r.get("kind") == "validate"],
            "applies": applies,
            **extraction_checks(store, [int(a["id"]) for a in applies]),
            "problems": store.problems(train_id) + [p for v in children for p in store.problems(int(v["id"]))],
        }


def extraction_checks(store: Any, apply_ids: list[int]) -> dict[str, dict[int, dict]]:
    """For these apply runs: the latest diarization check of each (``der``) and the stale ones
    (``stale``: the row of the ``stale_extractions`` view, with the epoch params.yml points at now)."""
    wanted = set(apply_ids)
    der = {}
    for run_id in apply_ids:
        rows = store.diarizations(run_id=run_id)
        if rows:
            der[run_id] = rows[0]
    stale = {int(r["apply_run_id"]): r for r in store.stale_extractions() if r["apply_run_id"] in wanted}
    return {"der": der, "stale": stale}


def read_curves(path: Path, run_ids: list[int], since: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """Steps (after ``since[run_id]``, default all), validations and config of several runs, for
    the compare screen."""
    since = since or {}
    out = []
    with store_at(path) as store:
        validate_runs: list[dict] | None = None  # read once, when a training run needs its validators
        for run_id in run_ids:
            run = store.run(run_id)
            if run is None:
                continue
            config = run.get("config")
            if isinstance(config, str):
                try:
                    config = json.loads(config)
                except ValueError:
                    config = {}
            train = run.get("kind") == "train"
            if train and validate_runs is None:
                validate_runs = store.runs(kind="validate")
            validators = ([r for r in validate_runs if r.get("parent_id") == run_id] if train
                          else [run] if run.get("kind") == "validate" else [])
            out.append({"run": run, "steps": store.steps(run_id, since_step=since.get(run_id, -1)) if train else [],
                        "validations": store.validations(train_run_id=run_id) if train
                        else store.validations(run_id),
                        "validators": validators, "config": config or {}})
    return out


def run_query(path: Path, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple]]:
    """A read-only SQL query (the store refuses writes on a read-only connection)."""
    with store_at(path) as store:
        columns, rows = store.query(sql, limit=limit)
        return list(columns), [tuple(r) for r in rows]


def used_by_runs(path: Path, exp_dir: Path) -> list[int]:
    """Ids of runs that used the config of ``exp_dir``."""
    if not path.exists():
        return []
    target = exp_dir.resolve()
    with store_at(path) as store:
        return [int(r["id"]) for r in store.runs()
                if r.get("exp_dir") and Path(r["exp_dir"]).resolve() == target]
