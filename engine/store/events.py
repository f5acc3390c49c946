"""Event files: the runs database's records as JSON lines, for databases on network filesystems.

SQLite's WAL cannot work on NFS, Lustre, GPFS or BeeGFS (``engine.store.netfs``).
There a run appends the same records it would write to the database to an event
file in its own folder (``TRN_DIR/events.jsonl``): one JSON object a line,
written with one ``write`` on an ``O_APPEND`` descriptor and flushed at once;
fsynced when a checkpoint, an epoch or a status is recorded.
``spkemb-engine import`` (``engine.store.importing``) replays them into a local database,
idempotently: each line carries its run's ``uid`` and a sequence number.

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
from pathlib import Path
from typing import Any

from engine.errors import StoreError
from engine.records import Checkpoint, EpochSummary, Extraction, ValidationResult, as_args
from engine.store import liveness
from engine.store.db import default_db_path
from engine.store.event_records import FORMAT_VERSION
from engine.store.netfs import is_network_fs
from engine.store.runs import open_store
from engine.store.writer import RunWriter
from engine.version import software

_FSYNC_OPS = frozenset({"create_run", "set_status", "add_epoch", "add_checkpoint"})
_PATH_ARGS = frozenset({"exp_dir", "out_dir", "log_path", "scores_path", "checkpoint"})



#: the longest line an event file holds: a record is a few kB (a run's config, a batch of step
#: rows: at most an epoch's, about 120 bytes a step); a longer line, or a file that never ends
#: one, is damage, and is not read into memory whole
MAX_LINE_BYTES = 64 * 2**20

def _cut_torn_line(path: Path, fd: int) -> None:
    """End the file's last line before anything is appended: a writer killed mid-line left a record
    that never was (cut off), and a resumed run's records would be glued to it (not JSON: no import);
    a whole record that only lacks its newline (a file saved by an editor) gets it."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with open(path, "rb") as f:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            if (at := block.rfind(b"\n")) >= 0:
                end = start + at + 1
                break
            end = start
        f.seek(end)
        tail = f.read(min(size - end, MAX_LINE_BYTES + 1))
    if end == size:
        return
    try:
        json.loads(tail)
    except ValueError:  # a tail longer than any line an import reads is no record either
        os.ftruncate(fd, end)
    else:
        os.write(fd, b"\n")


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
            _cut_torn_line(self.path, self._fd)
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
        # set_best's checkpoint is a name (avg-top5), an extraction's the file it came from
        for key in (_PATH_ARGS - {"checkpoint"} if op == "set_best" else _PATH_ARGS) & args.keys():
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
                             "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "software": software()}
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


def open_writer(db_path: str | os.PathLike[str] | None, *, events_path: str | os.PathLike[str],
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
