"""The ``Store``: every read and write of the runs database, and nothing else writes SQL.

Writes follow the rules of docs/database.md ("Many processes, one file"): each is one short ``BEGIN IMMEDIATE``
transaction (a deferred transaction that later upgrades to a write fails with
SQLITE_BUSY at once instead of waiting, https://www.sqlite.org/lang_transaction.html),
metrics arrive in batches, and reads fetch everything at once so that no cursor
(and no WAL snapshot) outlives the call.

Writer methods take an optional ``_at`` (unix time of the event, default now) and
``create_run`` an optional ``_origin`` (host, pid, ...): only ``import_events``
uses them, to replay an event file with its original times.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.errors import StoreError
from engine.records.labels import check_label, check_tags, decode_tags, encode_tags
from engine.store import liveness
from engine.store.db import connect, inserted_id, open_write_queue, read_only_reason
from engine.store.groups import GroupReads
from engine.store.progress_rows import StoreProgress
from engine.store.reads import _abs
from engine.store.results import StoreResults
from engine.store.sweeps import StoreSweeps
from engine.store.typed_reads import TypedReads
from engine.store.upgrade import migrate, pending
from engine.version import software

RUN_KINDS = ("train", "validate", "apply")
RUN_STATUSES = ("queued", "running", "indexing", "completed", "failed", "stopped", "lost")
#: statuses of a run whose process is at work: ``indexing`` is training before its first step
LIVE_STATUSES = ("running", "indexing")
ENDED_STATUSES = ("completed", "failed", "stopped", "lost")


class Store(TypedReads, GroupReads, StoreProgress, StoreResults, StoreSweeps):
    """The runs database of one process (see ``open_store``).

    One connection, usable from several threads (calls are serialised by a lock).
    Its reads return typed records (``engine.store.typed_reads``: ``run_record``,
    ``checkpoint_records``, ...) or plain ``dict`` rows (``run``, ``find_runs``, ...: ``config`` and
    ``command`` decoded from JSON). A :class:`engine.store.writer.RunWriter`.
    """

    #: the database reads back what any process wrote (find_runs, checkpoints, validations)
    reads_back = True

    def __init__(self, db: Database, path: Path, *, readonly: bool = False) -> None:
        self.db, self.path, self.readonly = db, Path(path), readonly
        self._lock = threading.RLock()
        self._queue_fd = -1 if readonly else open_write_queue(self.path)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self.db.close()
            if self._queue_fd >= 0:
                os.close(self._queue_fd)
                self._queue_fd = -1

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` write transaction; nested calls join the outer one."""
        if self.readonly:
            raise StoreError(f"the runs database {self.path} was opened read-only; open it with "
                             "open_store(path) to write")
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:
                yield conn
                return
            if self._queue_fd >= 0:
                fcntl.flock(self._queue_fd, fcntl.LOCK_EX)
            try:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.DatabaseError as e:
                    raise self._error(e) from e
                try:
                    yield conn
                except sqlite3.DatabaseError as e:
                    if conn.in_transaction:  # SQLite has rolled back already after some errors (a full disk)
                        conn.execute("ROLLBACK")
                    raise self._error(e) from e
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                else:
                    try:
                        conn.execute("COMMIT")
                    except sqlite3.DatabaseError as e:  # e.g. a full disk: the WAL cannot grow
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise self._error(e) from e
            finally:
                if self._queue_fd >= 0:
                    fcntl.flock(self._queue_fd, fcntl.LOCK_UN)

    # ---- writers ----------------------------------------------------------------

    def create_run(self, *, kind: str, exp_dir: str | os.PathLike[str] | None,
                   out_dir: str | os.PathLike[str] | None, protocol: str | None,
                   subset: str | None, config: dict[str, Any] | None, command: list[str],
                   device: str | None, target_epoch: int | None = None,
                   parent_id: int | None = None, name: str | None = None,
                   log_path: str | os.PathLike[str] | None = None, init_from: str | None = None,
                   init_epoch: int | None = None, init_run_id: int | None = None,
                   init_sha256: str | None = None, status: str = "running", seed: int | None = None,
                   run_group: str | None = None, tags: list[str] | None = None, note: str | None = None,
                   _at: float | None = None, _origin: dict[str, Any] | None = None) -> int:
        """Record a new ``running`` (or ``indexing``) run of this process; returns its id.

        ``init_from``, ``init_epoch``, ``init_run_id`` and ``init_sha256`` are a forked run's lineage
        (``train --init-from``): the checkpoint, its epoch, the run that wrote it and its hash.

        ``seed``, ``run_group``, ``tags`` and ``note`` say how the run is compared
        (``engine.records.labels``); a run with a ``parent_id`` and no group of its own (a validate
        run) takes its parent's group, so that a group lists its validations too.

        Host, pid, the pid's start time (``/proc``) and ``$SLURM_JOB_ID`` are taken
        from the calling process, so that ``mark_lost`` can tell when it dies.
        """
        if kind not in RUN_KINDS:
            raise StoreError(f"unknown run kind {kind!r}: use one of {', '.join(RUN_KINDS)}")
        if status not in LIVE_STATUSES:
            raise StoreError(f"a new run is {' or '.join(LIVE_STATUSES)}, not {status!r}")
        try:  # an event file's record is checked for types only: its words are checked here
            group, tags = check_label(run_group, "group") if run_group else None, check_tags(tags or [])
        except ValueError as e:
            raise StoreError(str(e)) from None
        now = time.time() if _at is None else _at
        pid = os.getpid()
        origin = {"host": liveness.hostname(), "pid": pid,
                  "pid_start": liveness.process_start_time(pid),
                  "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "started_at": now, "software": software()}
        if _origin is not None:  # an imported run: what ran it is what its event file says, not this process
            origin = {**origin, "software": None, **_origin}
        origin["software"] = json.dumps(origin["software"]) if origin["software"] is not None else None
        row = {"name": name, "kind": kind, "status": status, "exp_dir": _abs(exp_dir),
               "out_dir": _abs(out_dir), "protocol": protocol, "subset": subset,
               "config": json.dumps(config, default=str),
               "command": json.dumps([str(c) for c in command]), "parent_id": parent_id,
               "device": device, "heartbeat_at": now, "target_epoch": target_epoch,
               "log_path": _abs(log_path), "init_from": _abs(init_from), "init_epoch": init_epoch,
               "init_run_id": init_run_id, "init_sha256": init_sha256, "seed": seed,
               "run_group": group, "tags": encode_tags(tags),
               "note": note or None, **origin}
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        with self.transaction() as conn:
            if row["run_group"] is None and parent_id is not None:
                parent = conn.execute("SELECT run_group FROM runs WHERE id = ?", (parent_id,)).fetchone()
                row["run_group"] = parent[0] if parent else None
            cursor = conn.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})",
                                  tuple(row.values()))
            return inserted_id(cursor)

    def reopen_run(self, run_id: int, *, from_step: int | None, command: list[str], device: str | None,
                   target_epoch: int | None = None, status: str = "running") -> None:
        """Make an ended run ``running`` (or ``indexing``) again in this process (``train --resume``).

        Steps after ``from_step`` (recorded after the checkpoint being resumed from, by a
        process that died) are deleted: they are about to be trained again. ``from_step``
        None (the checkpoint not read yet, while indexing) keeps the steps and the position.
        """
        if status not in LIVE_STATUSES:
            raise StoreError(f"a reopened run is {' or '.join(LIVE_STATUSES)}, not {status!r}")
        pid = os.getpid()
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, reason = NULL, ended_at = NULL, host = ?, pid = ?, "
                "pid_start = ?, slurm_job_id = ?, command = ?, device = ?, heartbeat_at = ?, "
                "step = COALESCE(?, step), target_epoch = COALESCE(?, target_epoch) WHERE id = ?",
                (status, liveness.hostname(), pid, liveness.process_start_time(pid),
                 os.environ.get("SLURM_JOB_ID"), json.dumps([str(c) for c in command]), device, time.time(),
                 from_step, target_epoch, run_id))
            if cursor.rowcount == 0:
                raise StoreError(f"no run {run_id} in {self.path}")
            if from_step is not None:
                conn.execute("DELETE FROM train_steps WHERE run_id = ? AND step > ?", (run_id, from_step))

    def set_labels(self, run_id: int, *, run_group: str | None = None, add_tags: Sequence[str] = (),
                   remove_tags: Sequence[str] = (), note: str | None = None) -> dict[str, Any]:
        """Change how a run is compared (``spkemb-engine tag``, the TUI's ``t``); returns its row.

        ``run_group`` and ``note``: None keeps them, ``""`` clears them. Tags are added after the
        run's own and removed wherever they are. A training run's new group is also given to the
        validate runs of it, and their apply runs, that had its old group (they are listed under their
        training's group).

        Raises
        ------
        StoreError
            No such run, or a group or tag that is not one word.
        """
        try:
            group = None if run_group is None else (check_label(run_group, "group") if run_group.strip() else "")
            added, removed = check_tags(add_tags), check_tags(remove_tags)
        except ValueError as e:
            raise StoreError(str(e)) from None
        with self.transaction() as conn:
            found = conn.execute("SELECT run_group, tags, kind FROM runs WHERE id = ?", (run_id,)).fetchone()
            if found is None:
                raise StoreError(f"no run {run_id} in {self.path}: `spkemb-engine runs` lists the run ids")
            old_group, old_tags, kind = found
            if group is not None and (group or None) != old_group and kind != "train":
                raise StoreError(self._group_follows(conn, run_id, kind, group))
            tags = [t for t in decode_tags(old_tags) if t not in removed]
            tags += [t for t in added if t not in tags and t not in removed]
            conn.execute("UPDATE runs SET tags = ? WHERE id = ?", (encode_tags(tags), run_id))
            if note is not None:
                conn.execute("UPDATE runs SET note = ? WHERE id = ?", (note.strip() or None, run_id))
            if group is not None:
                conn.execute("UPDATE runs SET run_group = ? WHERE id = ?", (group or None, run_id))
                conn.execute("UPDATE runs SET run_group = ? WHERE kind = 'apply' AND run_group IS ? AND parent_id IN "
                             "(SELECT id FROM runs WHERE parent_id = ? AND kind = 'validate')",
                             (group or None, old_group, run_id))
                conn.execute("UPDATE runs SET run_group = ? WHERE parent_id = ? AND kind = 'validate' "
                             "AND run_group IS ?", (group or None, run_id, old_group))
        row = self.run(run_id)
        assert row is not None
        return row

    @staticmethod
    def _group_follows(conn: sqlite3.Connection, run_id: int, kind: str, group: str) -> str:
        """Why a validate or apply run takes no group of its own: it is listed under its training run's."""
        train_id = conn.execute("SELECT COALESCE(v.parent_id, r.parent_id) FROM runs r LEFT JOIN runs v ON "
                                "v.id = r.parent_id AND v.kind = 'validate' WHERE r.id = ?", (run_id,)).fetchone()[0]
        named = group or "''"  # clearing a group is `--group ''`
        fix = (f"give it to training run {train_id} (`spkemb-engine tag {train_id} --group {named}`)"
               if train_id is not None else "a group is a training run's")
        return f"run {run_id} is a {kind} run: its group is its training run's, which it follows; {fix}"

    def set_status(self, run_id: int, status: str, reason: str | None = None, *,
                   _at: float | None = None) -> None:
        """Set a run's status; an ended status (completed, failed, stopped, lost) sets ``ended_at``.

        A sweep trial the queue pruned (``sweep_trials.prune_reason``) is recorded ``stopped`` with that
        reason, whoever records the stop: the SIGTERM it was stopped with is only the means.
        """
        if status not in RUN_STATUSES:
            raise StoreError(f"unknown run status {status!r}: use one of {', '.join(RUN_STATUSES)}")
        now = time.time() if _at is None else _at
        ended = now if status in ENDED_STATUSES else None
        with self.transaction() as conn:
            cursor = conn.execute("UPDATE runs SET status = ?, reason = CASE ? WHEN 'stopped' THEN COALESCE("
                                  "(SELECT prune_reason FROM sweep_trials WHERE run_id = runs.id), ?) ELSE ? END, "
                                  "ended_at = ?, heartbeat_at = MAX(COALESCE(heartbeat_at, 0), ?) WHERE id = ?",
                                  (status, status, reason, reason, ended, now, run_id))
            if cursor.rowcount == 0:
                raise StoreError(f"no run {run_id} in {self.path}")

    def mark_lost(self, *, now: float | None = None) -> list[int]:
        """Set ``lost`` on running runs whose heartbeat is stale and whose process is gone.

        Stale means older than ``liveness.LOST_AFTER`` (3 heartbeat intervals) for
        a run of this host whose pid + start time no longer exists, and older than
        ``liveness.REMOTE_LOST_AFTER`` for a run of another host, which cannot be
        checked. Returns the ids marked.
        """
        lost = self.lost_runs(now=now)
        marked = []
        if lost:
            with self.transaction() as conn:
                for run in lost:
                    # the heartbeat test again: the run may have beaten since we looked
                    cursor = conn.execute("UPDATE runs SET status = 'lost', ended_at = ?, reason = ? "
                                          "WHERE id = ? AND status IN ('running', 'indexing') AND heartbeat_at = ?",
                                          (run["heartbeat_at"], run["reason"], run["id"], run["heartbeat_at"]))
                    if cursor.rowcount:
                        marked.append(run["id"])
        return marked

    def record_import(self, uid: str, run_id: int, path: str | os.PathLike[str], seq: int) -> None:
        """Remember that event file records of run ``uid`` up to ``seq`` are in run ``run_id``."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO event_imports (uid, run_id, path, seq, imported_at) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT (uid) DO UPDATE SET seq = excluded.seq, "
                         "path = excluded.path, imported_at = excluded.imported_at",
                         (uid, run_id, os.fspath(path), seq, time.time()))


def open_store(path: str | os.PathLike[str], *, readonly: bool = False) -> Store:
    """Open (creating and migrating unless ``readonly``) the runs database at ``path``.

    Parameters
    ----------
    path
        The database file (see ``default_db_path``).
    readonly
        For watchers such as the TUI: writes are refused, the file must exist. A file
        of an older schema is still upgraded once, by a short-lived writer.

    Raises
    ------
    StoreError
        Missing file (readonly), not a database, or written by a newer release.
    """
    path = Path(path)
    if readonly:
        db = connect(path, readonly=True)
        try:
            todo = pending(db, path)
        except BaseException:
            db.close()
            raise
        if todo:
            db.close()
            reason = read_only_reason(path)
            if reason is not None:
                raise StoreError(f"runs database {path} needs an upgrade to this release's schema but is "
                                 f"read-only ({reason}): open it once where it can be written (any "
                                 "spkemb-engine command with --db), or copy it to a writable folder")
            open_store(path).close()
            db = connect(path, readonly=True)
        return Store(db, path, readonly=True)
    db = connect(path)
    try:
        migrate(db, path)
    except BaseException:
        db.close()
        raise
    return Store(db, path)


def existing_store(path: str | os.PathLike[str], *, readonly: bool = True) -> AbstractContextManager[Store | None]:
    """The runs database at ``path`` where there is one (closed after the ``with``), else None: for the
    commands that read what was recorded and otherwise go by the files (``average --top``, ``clean``,
    ``verify``)."""
    return open_store(path, readonly=readonly) if Path(path).exists() else nullcontext()
