"""``spkemb-engine import``: event files replayed into a local runs database, idempotently.

Each line of an event file (``engine.store.events``) carries its run's ``uid`` and a sequence
number; the database remembers the last sequence number it imported per uid, so importing a
file again adds nothing and a file that grew adds only its new lines. Every line is checked
(``event_records``) before anything of it is written; a checkpoint outside its run's folder,
or missing, is never recorded (``validate`` would load it).
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.console import out, plural, say
from engine.errors import StoreError
from engine.layout import EVENTS
from engine.regular_files import NotRegularFile, open_regular
from engine.requests import ImportRequest
from engine.store.db import default_db_path
from engine.store.event_records import BadRecord, EventRecord, parse_record, store_call
from engine.store.events import MAX_LINE_BYTES
from engine.store.netfs import is_network_fs
from engine.store.runs import Store, open_store

#: arguments that name another run of the database that wrote the file
_ID_ARGS = ("parent_id", "train_run_id", "init_run_id")




def _complete_lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(number, text) of each complete line of ``path``, one line in memory at a time; text None
    for a line longer than ``MAX_LINE_BYTES``, the last one yielded.

    A torn last line (no newline yet: a writer still writing, or killed) is left out.

    Raises
    ------
    StoreError
        ``path`` cannot be read, or is no regular file (a pipe, which would block, or a device).
    """
    try:
        fd = open_regular(path)
    except (NotRegularFile, IsADirectoryError):
        raise StoreError(f"{path} is not a regular file: give the events file a run wrote") from None
    except OSError as e:
        raise StoreError(f"cannot read the event file {path}: {e.strerror or e}") from e
    with os.fdopen(fd, "rb") as f:
        for number in itertools.count(1):
            try:
                line = f.readline(MAX_LINE_BYTES + 1)
            except OSError as e:
                raise StoreError(f"cannot read the event file {path}: {e.strerror or e}") from e
            if line.endswith(b"\n"):
                yield number, line[:-1]
            elif len(line) > MAX_LINE_BYTES:
                yield number, None
                return
            else:
                return


def _parse_events(path: Path) -> tuple[list[EventRecord], str | None]:
    """The records of an event file up to its first bad complete line, and what names that line."""
    records: list[EventRecord] = []
    for number, raw in _complete_lines(path):
        try:
            if raw is None:
                raise BadRecord(f"a line longer than {MAX_LINE_BYTES >> 20} MiB")
            try:  # the writer writes UTF-8: other bytes are damage, never a name to keep as "�"
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise BadRecord(f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
            if line.strip():
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
    with _refused_as(path, first):
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
            if not trn_dir:
                run = store.run(run_id)
                if run is None:  # this import made or found it just before
                    raise StoreError(f"run {run_id} is gone from the database while {path} was imported")
                trn_dir = run["out_dir"]
            problem = _checkpoint_problem(args["path"], trn_dir)
            if problem is not None:  # a row would tell validate and watchers to load it
                warn(f"{path}:{record.line}: {problem}: not recorded as a checkpoint")
                continue
        records, kwargs = store_call(record.op, args)
        with _refused_as(path, record):
            getattr(store, record.op)(run_id, *records, **kwargs, _at=record.t)


@contextmanager
def _refused_as(path: Path, record: EventRecord) -> Iterator[None]:
    """A line the writer refuses although it passed the line checks, named ``FILE:LINE`` in one line
    (the file's transaction is then rolled back: nothing of it is imported)."""
    try:
        yield
    except sqlite3.OperationalError:  # the database or its disk (full, locked), not the line: said as such
        raise
    except (StoreError, ValueError, TypeError, KeyError, sqlite3.Error) as e:
        if isinstance(e.__cause__, sqlite3.OperationalError):  # the store's own words for the same
            raise
        raise StoreError(f"{path}:{record.line}: {record.op} cannot be recorded ({e}); the file is damaged and "
                         "nothing of it is imported: fix or delete that line and import again") from None


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
    for uid, run_records in by_run.items():
        _refuse_repeated_seq(path, uid, run_records)
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


def _refuse_repeated_seq(path: Path, uid: str, records: list[EventRecord]) -> None:
    """A writer numbers a run's records 1, 2, 3...: one number twice is a copied or spliced line,
    which would be replayed twice (before anything is written)."""
    seen: dict[int, int] = {}
    for record in records:
        if record.seq in seen:
            raise StoreError(f"{path}:{record.line}: seq {record.seq} of run {uid} is also on line "
                             f"{seen[record.seq]}; the file is damaged: delete one of the two and import again")
        seen[record.seq] = record.line


def _event_files(paths: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(path.rglob(EVENTS))
            if not found:
                raise StoreError(f"no {EVENTS} under {path}: give event files or the "
                                 "folders of runs that wrote them")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():  # a pipe would block the import, a device never end
            raise StoreError(f"{path} is not a regular file: give event files or the folders of runs that wrote them")
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
            out(f"{path}: {plural(result['records'], 'new record')}, {plural(result['runs'], 'run')} updated")
    return 0
