"""Reading the runs database: every ``Store`` query, each one short read with no cursor kept.

Each call fetches all its rows at once, so no read transaction (WAL snapshot)
outlives it: a long-lived reader would stop WAL checkpoints and let the WAL grow
without bound (https://www.sqlite.org/wal.html#avoiding_excessively_large_wal_files).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.errors import StoreError
from engine.records.labels import decode_tags
from engine.records.runs import clock_text
from engine.store import liveness, readonly
from engine.store.db import one_snapshot
from engine.store.readonly import DEFAULT_ROW_LIMIT, DEFAULT_TIME_LIMIT_S, QueryResult, QueryStop

_JSON_COLUMNS = ("config", "command", "software")
#: the network a run's config names (architecture, front end), read in SQL so that a runs list
#: still leaves the config out; NULL for a run without one (or with a config that is not JSON)
_NETWORK_COLUMNS = ("CASE WHEN json_valid(r.config) THEN json_extract(r.config, '$.architecture.name') "
                    "END AS architecture, CASE WHEN json_valid(r.config) THEN "
                    "json_extract(r.config, '$.feature_extraction.name') END AS front_end")


def _abs(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else os.path.abspath(os.fspath(path))


#: the key of a decoded ``runs`` row whose JSON column could not be decoded: ``{column: why}``; the
#: column reads None, the rest of the row as stored (a hand edit or a damaged file loses one run's
#: config, not the listing); what shows runs says so (``runs_listing``), and the file is left as it is
DAMAGED = "_damaged"


def json_column(text: Any) -> tuple[Any, str | None]:
    """The value of a JSON column, or None and why it cannot be read."""
    try:
        return json.loads(text), None
    except RecursionError:  # Python's JSON reader recurses once per level: `[[[[…` thousands deep
        return None, "JSON nested too deeply to read"
    except (ValueError, TypeError) as e:  # TypeError: a number stored in the column
        return None, f"not JSON ({e})"


def _decode_run(row: dict[str, Any]) -> dict[str, Any]:
    for column in _JSON_COLUMNS:
        if row.get(column) is not None:
            row[column], why = json_column(row[column])
            if why is not None:
                row.setdefault(DAMAGED, {})[column] = why
    if "tags" in row:
        row["tags"] = list(decode_tags(row["tags"]))
    return row


class StoreReads:
    """The readers of ``Store`` (see there); rows are plain dicts."""

    db: Database
    path: Path
    readonly: bool
    _lock: threading.RLock

    def _error(self, e: sqlite3.DatabaseError) -> StoreError:
        if "locked" in str(e) or "busy" in str(e):
            return StoreError(f"the runs database {self.path} stayed locked by another process "
                              f"for over a minute ({e}); find the program holding it (fuser "
                              f"{self.path}) or pass --db with another file")
        if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return StoreError(f"runs database {self.path}: no space left on its device ({e}); free some "
                              "space there, or pass --db with a file on another disk")
        return StoreError(f"runs database {self.path}: {e}")

    def lost_runs(self, *, now: float | None = None) -> list[dict[str, Any]]:
        """Running (or indexing) runs that ``Store.mark_lost`` would mark lost (id, heartbeat_at,
        reason); no write."""
        now = time.time() if now is None else now
        candidates = self._read("SELECT id, host, pid, pid_start, heartbeat_at FROM runs "
                                "WHERE status IN ('running', 'indexing') AND heartbeat_at < ?",
                                (now - liveness.LOST_AFTER,))
        lost = []
        for run in candidates:
            alive = liveness.is_alive(run["host"], run["pid"], run["pid_start"])
            if alive is False or (alive is None
                                  and run["heartbeat_at"] < now - liveness.REMOTE_LOST_AFTER):
                since = clock_text(run["heartbeat_at"], "%Y-%m-%d %H:%M:%S")
                lost.append({"id": run["id"], "heartbeat_at": run["heartbeat_at"],
                             "reason": f"no heartbeat since {since} and process {run['pid']} "
                                       f"on {run['host']} is gone"})
        return lost

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cursor = self.db.conn.execute(sql, tuple(params))
                columns = [d[0] for d in cursor.description]
                return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.DatabaseError as e:
                raise self._error(e) from e

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """The reads inside see one state of the file: a short read transaction, joined by reads
        already inside one. Hold it for a few reads that must agree, never across a wait."""
        with self._lock:
            try:
                with one_snapshot(self.db.conn):
                    yield
            except sqlite3.DatabaseError as e:
                raise self._error(e) from e

    def runs_changed_since(self, changed: int = 0, *, newest: int | None = None
                           ) -> tuple[list[dict[str, Any]], int, int]:
        """Summaries of the runs changed after the change counter ``changed`` (0: every run);
        ``newest``: only that many, the newest.

        Each row is a run without its config and command, plus ``last_loss`` (the loss of a
        training run's latest step) and the ``architecture`` and ``front_end`` names its config
        gives (None where it gives none). Returns ``(rows, newest change, number of runs)``, all
        read in one short transaction so that the three agree (one WAL snapshot).
        """
        columns = ", ".join(f"r.{c}" for c in self._summary_columns)
        with self.snapshot():
            rows = self._read(
                f"SELECT {columns}, s.loss AS last_loss, {_NETWORK_COLUMNS} FROM runs AS r "
                "LEFT JOIN train_steps AS s ON r.kind = 'train' AND s.run_id = r.id AND s.step = r.step "
                "WHERE r.changed > ? ORDER BY r.id DESC LIMIT ?", (changed, -1 if newest is None else newest))
            (total,) = self._read("SELECT COALESCE(MAX(changed), 0) AS newest, COUNT(*) AS count FROM runs")
        newest, count = total["newest"], total["count"]
        return rows, int(newest), int(count)

    @functools.cached_property
    def _summary_columns(self) -> list[str]:
        """The runs columns a runs list reads (the schema is fixed once the store is open)."""
        return [c for c in self.db["runs"].columns_dict if c not in _JSON_COLUMNS]

    def runs(self, status: str | None = None, kind: str | None = None, *, group: str | None = None,
             tag: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, optionally of one status, kind, group and/or carrying one tag."""
        return self.find_runs(status=status, kind=kind, run_group=group, tag=tag)

    def run_summaries(self) -> list[dict[str, Any]]:
        """Every run, newest first, without its config and command (what a runs list shows)."""
        return self._read(f"SELECT {', '.join(self._summary_columns)} FROM runs ORDER BY id DESC")

    def run(self, run_id: int) -> dict[str, Any] | None:
        """One run, or None."""
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        return _decode_run(rows[0]) if rows else None

    def experiment_folders(self, kind: str | None = None) -> dict[str, list[int]]:
        """Each EXP_DIR the runs (of ``kind``) were recorded with, and their ids, newest first: the
        folders of a lab's 10,000 runs are a few hundred, each looked at once."""
        clause, values = ("kind = ?", (kind,)) if kind is not None else ("1", ())
        folders: dict[str, list[int]] = {}
        for row in self._read(f"SELECT id, exp_dir FROM runs WHERE exp_dir IS NOT NULL AND {clause} "
                              "ORDER BY id DESC", values):
            folders.setdefault(row["exp_dir"], []).append(int(row["id"]))
        return folders

    def find_runs(self, *, out_dir: str | os.PathLike[str] | None = None, kind: str | None = None,
                  status: str | None = None, exp_dir: str | os.PathLike[str] | None = None,
                  protocol: str | None = None, subset: str | None = None, run_group: str | None = None,
                  tag: str | None = None) -> list[dict[str, Any]]:
        """Runs matching every given field (paths compared as absolute paths), newest first;
        ``tag``: runs whose tags hold it."""
        where = {"out_dir": _abs(out_dir), "kind": kind, "status": status,
                 "exp_dir": _abs(exp_dir), "protocol": protocol, "subset": subset, "run_group": run_group}
        where = {k: v for k, v in where.items() if v is not None}
        tests = [f"{k} = ?" for k in where]
        values: list[Any] = list(where.values())
        if tag is not None:
            tests.append("EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE json_each.value = ?)")
            values.append(tag)
        clause = " AND ".join(tests) or "1"
        rows = self._read(f"SELECT * FROM runs WHERE {clause} ORDER BY id DESC", tuple(values))
        return [_decode_run(r) for r in rows]

    def steps(self, run_id: int, since_step: int = -1, *, at_most: int | None = None) -> list[dict[str, Any]]:
        """Training steps of a run after ``since_step``, in step order.

        ``at_most``: when the steps after ``since_step`` span more than that, about that many
        evenly spaced ones are read, the last step always among them (a plot of a million steps
        draws a few thousand points, and reading a million rows takes seconds; averaging them
        would read every row too). Reading again after the last one misses nothing.
        """
        span = {"low": None} if at_most is None else self._read(
            "SELECT MIN(step) AS low, MAX(step) AS high FROM train_steps WHERE run_id = ? AND step > ?",
            (run_id, since_step))[0]
        if at_most is not None and span["low"] is not None and span["high"] - span["low"] > at_most:
            # the sampled steps come from the (run_id, step) index alone; only their rows are read
            return self._read(
                "WITH RECURSIVE marks(x) AS (SELECT ? UNION ALL SELECT x + ? FROM marks WHERE x + ? < ?), "
                "picked(step) AS (SELECT (SELECT step FROM train_steps WHERE run_id = ? AND step >= marks.x "
                "ORDER BY step LIMIT 1) FROM marks UNION SELECT ?) "
                "SELECT step, epoch, loss, lr, margin, chunks_per_s, time FROM train_steps "
                "WHERE run_id = ? AND step IN picked ORDER BY step, id",
                (span["low"], (span["high"] - span["low"]) / at_most, (span["high"] - span["low"]) / at_most,
                 span["high"], run_id, span["high"], run_id))
        return self._read("SELECT step, epoch, loss, lr, margin, chunks_per_s, time FROM train_steps "
                          "WHERE run_id = ? AND step > ? ORDER BY step, id", (run_id, since_step))

    def children(self, run_id: int) -> list[dict[str, Any]]:
        """The runs started from ``run_id`` (its validate and apply runs, its forks), newest first."""
        rows = self._read("SELECT * FROM runs WHERE parent_id = ? ORDER BY id DESC", (run_id,))
        return [_decode_run(r) for r in rows]

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        """Per-epoch training summaries of a run, in epoch order."""
        return self._read("SELECT epoch, loss, lr, chunks_per_s, seconds, time FROM train_epochs "
                          "WHERE run_id = ? ORDER BY epoch", (run_id,))

    def checkpoints(self, run_id: int) -> list[dict[str, Any]]:
        """Checkpoints of a run, oldest first (``partial`` as bool; ``name`` set on averaged weights)."""
        rows = self._read("SELECT epoch, step, path, partial, time, name, averaged, sha256 FROM checkpoints "
                          "WHERE run_id = ? ORDER BY id", (run_id,))
        for row in rows:
            row["partial"] = bool(row["partial"])
        return rows

    def checkpoint_sha256(self, path: str | os.PathLike[str]) -> str | None:
        """The sha256 recorded with the newest row of the file ``path`` (by its absolute or real
        path); None when no row, or only rows of earlier releases, name it."""
        names = sorted({os.path.abspath(path), os.path.realpath(path)})
        marks = ", ".join("?" * len(names))
        rows = self._read(f"SELECT sha256 FROM checkpoints WHERE path IN ({marks}) AND sha256 IS NOT NULL "
                          "ORDER BY id DESC LIMIT 1", tuple(names))
        return rows[0]["sha256"] if rows else None

    def validations(self, run_id: int | None = None, *,
                    train_run_id: int | None = None) -> list[dict[str, Any]]:
        """EER rows of a validate run, or of every validate run of a training run, by epoch."""
        if (run_id is None) == (train_run_id is None):
            raise StoreError("validations(): give run_id or train_run_id, not both or neither")
        column, value = ("run_id", run_id) if run_id is not None else ("train_run_id", train_run_id)
        return self._read(f"SELECT * FROM validations WHERE {column} = ? ORDER BY epoch, id", (value,))

    def extractions(self, run_id: int) -> list[dict[str, Any]]:
        """Extractions recorded by an apply run."""
        return self._read("SELECT * FROM extractions WHERE run_id = ? ORDER BY id", (run_id,))

    def diarizations(self, out_dir: str | os.PathLike[str] | None = None, *,
                     run_id: int | None = None) -> list[dict[str, Any]]:
        """Diarization checks of an extraction folder or of an apply run, newest first."""
        if (out_dir is None) == (run_id is None):
            raise StoreError("diarizations(): give out_dir or run_id, not both or neither")
        column, value = ("out_dir", _abs(out_dir)) if out_dir is not None else ("run_id", run_id)
        return self._read(f"SELECT * FROM diarizations WHERE {column} = ? ORDER BY id DESC", (value,))

    def diarization_files(self, diarization_id: int) -> list[dict[str, Any]]:
        """Per-file DER of one diarization check, by uri."""
        return self._read("SELECT * FROM diarization_files WHERE diarization_id = ? ORDER BY uri",
                          (diarization_id,))

    def stale_extractions(self) -> list[dict[str, Any]]:
        """Extractions whose epoch is no longer the one their VAL_DIR points at (the view)."""
        return self._read("SELECT * FROM stale_extractions ORDER BY extraction_id DESC")

    def problems(self, run_id: int) -> list[dict[str, Any]]:
        """Data problems recorded by a run."""
        return self._read("SELECT * FROM data_problems WHERE run_id = ? ORDER BY id", (run_id,))

    # the names imported from engine.store.readonly: in this class, ``readonly`` is the attribute
    def query(self, sql: str, params: Sequence[Any] = (), limit: int | None = DEFAULT_ROW_LIMIT, *,
              time_limit: float | None = DEFAULT_TIME_LIMIT_S,
              stop: QueryStop | None = None) -> QueryResult:
        """Run one read-only SQL statement (the TUI's Query screen).

        It runs on a connection of its own that SQLite keeps from writing, attaching
        or changing settings (``engine.store.readonly``), whatever this store may do.

        Parameters
        ----------
        limit
            Rows returned at most (``DEFAULT_ROW_LIMIT``, 10,000; None: every row):
            ``truncated`` in the result says when some were left out.
        time_limit
            Seconds the statement may run (``DEFAULT_TIME_LIMIT_S``; None: no limit).
        stop
            A ``QueryStop`` through which another thread can stop the statement.

        Returns
        -------
        QueryResult
            ``columns``, ``rows`` and ``truncated``; unpacks as ``columns, rows``.

        Raises
        ------
        QueryStopped
            The time limit passed, or ``stop`` was used.
        StoreError
            The statement is not valid SQL, is more than one, or does more than read.
        """
        return readonly.query(self.path, sql, params, limit, time_limit=time_limit, stop=stop)

    def imported(self, uid: str) -> tuple[int, int] | None:
        """(run id, last imported seq) of the event-file run ``uid``, or None if never imported."""
        rows = self._read("SELECT run_id, seq FROM event_imports WHERE uid = ?", (uid,))
        return (rows[0]["run_id"], rows[0]["seq"]) if rows else None
