"""Event files: the runs database's records as JSON lines, for databases on network filesystems.

SQLite's WAL cannot work on NFS, Lustre, GPFS or BeeGFS (``engine.store.netfs``).
There a run appends the same records it would write to the database to an event
file in its own folder (``TRN_DIR/events.jsonl``): one JSON object a line,
written with one ``write`` on an ``O_APPEND`` descriptor and flushed at once;
fsynced when a checkpoint, an epoch or a status is recorded.
``spkemb-engine import`` (``import_events``) replays them into a local database,
idempotently: each line carries its run's ``uid`` and a sequence number, and the
database remembers the last sequence number it imported per uid.

Line format: ``{"v": 1, "run": UID, "seq": N, "t": UNIX_TIME, "op": METHOD, "args": {...}}``
where METHOD is a ``Store`` writer method and ``args`` its keyword arguments, checked
against that method's signature before anything is written (``event_records``).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.console import out, say
from engine.errors import StoreError
from engine.layout import EVENTS
from engine.records import Checkpoint, EpochSummary, Extraction, ValidationResult, as_args
from engine.requests import ImportRequest
from engine.store import liveness
from engine.store.db import default_db_path
from engine.store.event_records import FORMAT_VERSION, BadRecord, EventRecord, parse_record, store_call
from engine.store.netfs import is_network_fs
from engine.store.runs import Store, open_store
from engine.store.writer import RunWriter

EVENTS_FILE = EVENTS
_FSYNC_OPS = frozenset({"create_run", "set_status", "add_epoch", "add_checkpoint"})
_PATH_ARGS = frozenset({"exp_dir", "out_dir", "log_path", "scores_path", "checkpoint"})
_ID_ARGS = ("parent_id", "train_run_id", "init_run_id")


class EventWriter:
    """Writes a run's records to a JSON-lines file, with the writer methods of ``Store``.

    Parameters
    ----------
    path
        The event file (created with its folder; appended to if it exists).
    """

    #: an event file is written, never read back by the run that writes it
    reads_back = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"cannot write the event file {self.path}: {e}; "
                             "check the folder's permissions and free space") from e
        self._uids: dict[int, str] = {}
        self._seq: dict[str, int] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, uid: str, op: str, args: dict[str, Any]) -> None:
        for key in _PATH_ARGS & args.keys():
            if args[key] is not None:
                args[key] = os.path.abspath(os.fspath(args[key]))
        if op in ("add_checkpoint", "remove_checkpoint"):
            args["path"] = os.path.abspath(os.fspath(args["path"]))
        with self._lock:
            seq = self._seq[uid] = self._seq.get(uid, 0) + 1
            line = json.dumps({"v": FORMAT_VERSION, "run": uid, "seq": seq, "t": time.time(),
                               "op": op, "args": args}, default=str) + "\n"
            try:
                os.write(self._fd, line.encode())
                if op in _FSYNC_OPS:
                    os.fsync(self._fd)
            except OSError as e:
                raise StoreError(f"cannot append to the event file {self.path}: {e}") from e

    def _uid(self, run_id: int) -> str:
        try:
            return self._uids[run_id]
        except KeyError:
            raise StoreError(f"run {run_id} was not created by this event writer ({self.path})") from None

    def create_run(self, **fields: Any) -> int:
        """Record a new run (arguments as ``Store.create_run``); returns its id in this file."""
        uid = uuid.uuid4().hex
        pid = os.getpid()
        fields["command"] = [str(c) for c in fields.get("command", [])]
        fields["_origin"] = {"host": liveness.hostname(), "pid": pid,
                             "pid_start": liveness.process_start_time(pid),
                             "slurm_job_id": os.environ.get("SLURM_JOB_ID")}
        run_id = len(self._uids) + 1
        self._uids[run_id] = uid
        self._write(uid, "create_run", fields)
        return run_id

    def _op(self, op: str, run_id: int, **args: Any) -> None:
        self._write(self._uid(run_id), op, args)

    def set_status(self, run_id: int, status: str, reason: str | None = None) -> None:
        """As ``Store.set_status``."""
        self._op("set_status", run_id, status=status, reason=reason)

    def heartbeat(self, run_id: int, **position: Any) -> None:
        """As ``Store.heartbeat``."""
        self._op("heartbeat", run_id, **position)

    def add_steps(self, run_id: int, rows: list[dict[str, Any]]) -> None:
        """As ``Store.add_steps``."""
        if rows:
            self._op("add_steps", run_id, rows=rows)

    def add_epoch(self, run_id: int, summary: EpochSummary) -> None:
        """As ``Store.add_epoch``."""
        self._op("add_epoch", run_id, **as_args(summary))

    def add_checkpoint(self, run_id: int, checkpoint: Checkpoint) -> None:
        """As ``Store.add_checkpoint``."""
        self._op("add_checkpoint", run_id, **as_args(checkpoint))

    def remove_checkpoint(self, run_id: int, **fields: Any) -> None:
        """As ``Store.remove_checkpoint``."""
        self._op("remove_checkpoint", run_id, **fields)

    def add_validation(self, run_id: int, result: ValidationResult, *, train_run_id: int | None = None) -> None:
        """As ``Store.add_validation``."""
        self._op("add_validation", run_id, **as_args(result), train_run_id=train_run_id)

    def set_best(self, run_id: int, **fields: Any) -> None:
        """As ``Store.set_best``."""
        self._op("set_best", run_id, **fields)

    def add_extraction(self, run_id: int, extraction: Extraction) -> None:
        """As ``Store.add_extraction``."""
        self._op("add_extraction", run_id, **as_args(extraction))

    def add_problem(self, run_id: int, **fields: Any) -> None:
        """As ``Store.add_problem``."""
        self._op("add_problem", run_id, **fields)

    def add_diarization(self, run_id: int, **fields: Any) -> None:
        """As ``Store.add_diarization`` (of the extraction this run wrote)."""
        self._op("add_diarization", run_id, **fields)

    def find_runs(self, *, out_dir: str | os.PathLike[str] | None = None,
                  kind: str | None = None) -> list[dict[str, Any]]:
        """Nothing: an event file cannot look back at runs recorded elsewhere."""
        return []


def recorder(db_path: str | os.PathLike[str] | None, *, events_path: str | os.PathLike[str],
             events: bool = False) -> RunWriter:
    """The writer a run should use: the database, or an event file where the database cannot work.

    Parameters
    ----------
    db_path
        The runs database (``default_db_path`` resolves ``None``).
    events_path
        The run's event file, used when the database is on a network filesystem.
    events
        Use the event file whatever the filesystem (``--events``).

    Returns
    -------
    RunWriter
        A ``Store`` or an ``EventWriter``: the writer methods (``create_run``, ``add_steps``, ...),
        ``find_runs`` and ``close``.
    """
    path = default_db_path(db_path)
    if events or is_network_fs(path):
        return EventWriter(events_path)
    return open_store(path)


def _parse_events(path: Path) -> tuple[list[EventRecord], str | None]:
    """The records of an event file up to its first bad complete line, and what names that line.

    A torn last line (no newline yet: a writer still writing, or killed) is left out.
    """
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise StoreError(f"cannot read the event file {path}: {e}") from e
    records = []
    for number, line in enumerate(text.split("\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            records.append(parse_record(line, number))
        except BadRecord as e:
            return records, f"{path}:{number}: not a spkemb event record ({e})"
    return records, None


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Complete records of an event file (a torn last line, still being written, is left out).

    Raises
    ------
    StoreError
        The file is missing, or a complete line is not an event record.
    """
    records, bad = _parse_events(Path(path))
    if bad is not None:
        raise StoreError(f"{bad}; the file is damaged: delete or fix that line and import again")
    return [r.as_dict() for r in records]


def _checkpoint_problem(checkpoint: str, trn_dir: str | None) -> str | None:
    """Why a recorded checkpoint cannot be a checkpoint row (None: it can)."""
    if not trn_dir:
        return f"checkpoint {checkpoint}: its run has no folder to hold it"
    real, folder = os.path.realpath(checkpoint), os.path.realpath(trn_dir)
    if os.path.commonpath([real, folder]) != folder:
        return f"checkpoint {checkpoint} is outside its run's folder {trn_dir}"
    if not os.path.isfile(real):
        return f"checkpoint {checkpoint} does not exist"
    return None


def _start_run(path: Path, uid: str, first: EventRecord, store: Store) -> int:
    """The database id of a run first seen in this file (its ``create_run`` record)."""
    if first.op != "create_run" or first.seq != 1:
        raise StoreError(f"{path}: run {uid} has no create_run record (seq 1); the "
                         "file is truncated at its start and cannot be imported")
    args = dict(first.args)
    for key in _ID_ARGS:
        if args.get(key) is not None and store.run(args[key]) is None:
            args[key] = None  # an id of another database means nothing here
    return store.create_run(**args, _at=first.t)


def _replay(path: Path, run_id: int, records: list[EventRecord], store: Store,
            warn: Callable[[str], None]) -> None:
    """Apply ``records`` (new ones, in order) to the run ``run_id``."""
    trn_dir = None
    for record in records:
        args = dict(record.args)
        for key in ("train_run_id", "validate_run_id"):
            if args.get(key) is not None and store.run(args[key]) is None:
                args[key] = None  # an id of another database means nothing here
        if record.op == "add_checkpoint":
            trn_dir = trn_dir or store.run(run_id)["out_dir"]
            problem = _checkpoint_problem(args["path"], trn_dir)
            if problem is not None:  # a row would tell validate and watchers to load it
                warn(f"{path}:{record.line}: {problem}: not recorded as a checkpoint")
                continue
        records, kwargs = store_call(record.op, args)
        getattr(store, record.op)(run_id, *records, **kwargs, _at=record.t)


def import_events(path: str | os.PathLike[str], store: Store, *,
                  warn: Callable[[str], None] | None = None) -> dict[str, int]:
    """Replay the records of an event file not yet in ``store``, in one transaction.

    Parameters
    ----------
    path
        An event file written by ``EventWriter``.
    store
        A writable local runs database.
    warn
        Told (one line naming ``FILE:LINE``) of each record skipped: a checkpoint
        whose file is missing or outside its run's folder.

    Returns
    -------
    dict[str, int]
        ``{"records": new records imported, "runs": runs touched}``. Importing the
        same file again adds nothing; a file that grew adds only the new lines.

    Raises
    ------
    StoreError
        A complete line is not a valid record: ``FILE:LINE: what is wrong``, raised
        after the records before that line are imported.
    """
    path = Path(path)
    records, bad = _parse_events(path)
    by_run: dict[str, list[EventRecord]] = {}
    for record in records:
        by_run.setdefault(record.run, []).append(record)
    new = touched = 0
    with store.transaction():
        for uid, run_records in by_run.items():
            run_records.sort(key=lambda r: r.seq)
            known = store.imported(uid)
            if known is None:
                run_id, last = _start_run(path, uid, run_records[0], store), run_records[0].seq
                new += 1
            else:
                run_id, last = known
            todo = [r for r in run_records if r.seq > last]
            _replay(path, run_id, todo, store, warn or (lambda line: None))
            if todo or known is None:
                store.record_import(uid, run_id, path, max([last] + [r.seq for r in todo]))
                touched += 1
            new += len(todo)
    if bad is not None:
        raise StoreError(f"{bad}; the {new} new records before it are imported: fix or delete "
                         "that line and import again")
    return {"records": new, "runs": touched}


def _event_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(path.rglob(EVENTS_FILE))
            if not found:
                raise StoreError(f"no {EVENTS_FILE} under {path}: give event files or the "
                                 "folders of runs that wrote them")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise StoreError(f"no such event file or folder: {path}")
    return files


def _warn(line: str) -> None:
    say(f"warning: {line}")


def cmd_import(args: ImportRequest) -> int:
    """``spkemb-engine import PATH... [--db FILE]``: ingest event files into a local database."""
    db = default_db_path(args.db)
    if is_network_fs(db):
        raise StoreError(f"{db} is on a network filesystem, where SQLite's WAL cannot work: "
                         "import into a database on a local disk (--db /local/path/runs.db)")
    files = _event_files(args.paths)
    with open_store(db) as store:
        for path in files:
            result = import_events(path, store, warn=_warn)
            out(f"{path}: {result['records']} new records, {result['runs']} runs updated")
    return 0
