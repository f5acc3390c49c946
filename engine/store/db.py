"""One SQLite connection to the runs database, set up the way every process needs it.

The order of the pragmas matters: ``busy_timeout`` first, so that switching the
file to WAL (which takes a lock) waits for a concurrent opener instead of failing
with SQLITE_BUSY at once; then ``journal_mode=WAL`` so readers (the TUI) never
block writers (training, validation). See https://www.sqlite.org/wal.html.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def _import_sqlite_utils_without_pandas() -> None:
    # sqlite-utils imports pandas (about a second, per process) only to recognise
    # pandas values in inserts, which the store never makes: hide pandas during that
    # import unless it is already loaded; it stays importable for everyone else.
    if "pandas" in sys.modules:
        import sqlite_utils
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils  # noqa: F401 - imported for its side effect: loaded without pandas
    finally:
        if sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]


_import_sqlite_utils_without_pandas()

from sqlite_utils import Database  # noqa: E402 - only after the pandas-free import above

from engine.console import listed  # noqa: E402 - kept with the import above
from engine.errors import StoreError  # noqa: E402 - kept with the import above
from engine.store.netfs import is_network_fs  # noqa: E402 - kept with the import above

#: milliseconds a statement waits for a lock before SQLITE_BUSY reaches the caller
BUSY_TIMEOUT_MS = 60_000

#: the runs database of a workspace (a folder such as the one ``demo-workspace`` makes)
WORKSPACE_DB = "runs.db"

#: where the database lives when neither --db, $SPKEMB_DB nor a workspace's runs.db says otherwise
DEFAULT_DB = Path("experiments") / "runs.db"


def default_db_path(explicit: str | os.PathLike[str] | None = None,
                    workspace: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the runs database path: the one rule of the TUI and every command.

    Parameters
    ----------
    explicit
        The ``--db`` option; wins when given.
    workspace
        The folder worked in: the TUI's ``--workspace``; the working directory when None.

    Returns
    -------
    Path
        ``explicit``, else ``$SPKEMB_DB``, else ``WORKSPACE/runs.db`` when that file exists,
        else ``WORKSPACE/experiments/runs.db``. Relative to the working directory when
        no workspace is given, as the user typed it.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SPKEMB_DB")
    if env:
        return Path(env).expanduser()
    root = Path(workspace).expanduser() if workspace is not None else Path()
    if (root / WORKSPACE_DB).is_file():
        return root / WORKSPACE_DB
    return root / DEFAULT_DB


def _sidecars(path: Path) -> tuple[Path, Path]:
    """The WAL file and the WAL index of ``path`` (https://www.sqlite.org/walformat.html)."""
    return Path(f"{path}-wal"), Path(f"{path}-shm")


def _on_read_only_media(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def read_only_reason(path: Path) -> str | None:
    """Why this process cannot write the runs database at ``path`` (None: it can).

    Writing needs the file (or, to create it, its nearest existing folder) and, in WAL
    mode, the ``-wal`` and ``-shm`` next to it, which SQLite creates in the folder when
    they are missing. ``os.access`` answers for this process: root passes permission
    bits (as it writes past them) but not a read-only mount.
    """
    path = Path(path).absolute()
    target = path if path.exists() else _nearest_existing(path.parent)
    if _on_read_only_media(target):
        return f"{target} is on a read-only file system"
    if not path.exists():
        return None if os.access(target, os.W_OK) else f"the folder {target} is not writable"
    if not os.access(path, os.W_OK):
        return f"the file is not writable (mode {path.stat().st_mode & 0o777:04o})"
    wal, shm = _sidecars(path)
    if not os.access(path.parent, os.W_OK) and not (wal.exists() and shm.exists()):
        return f"its folder {path.parent} is not writable (SQLite creates {wal.name} and {shm.name} there)"
    return None


def read_only_uri(path: Path) -> str:
    """The SQLite URI that reads ``path`` without writing, creating or locking anything it cannot.

    ``mode=ro`` (https://www.sqlite.org/uri.html) reads alongside writers: it takes
    read locks and reads the WAL through its index. But on a database this process
    cannot write it still creates ``-wal`` and ``-shm`` in a writable folder (owned by
    the reader, left behind, in the way of the owner's next writer), and on read-only
    media it cannot open a WAL database whose ``-shm`` is missing at all. So:

    - writable, or a ``-wal`` exists (a writer is at work, or left commits there):
      ``mode=ro``; SQLite finds the ``-wal`` and ``-shm`` it needs and creates nothing;
    - not writable and no ``-wal``: ``immutable=1``, which opens the main file without
      locks, ``-wal`` or ``-shm``. That is only correct while no writer changes the
      file. No writer has it open now (a WAL writer keeps its ``-wal`` while open), and
      on read-only media or for a file without write permission none can start; for
      someone else's writable file one could start during this read, but it writes to
      a new ``-wal`` and touches the main file only at a checkpoint (1000 pages, or its
      close): the read sees the state before it; readers open a connection per read
      (the TUI's every refresh), so the next one sees the ``-wal`` and uses ``mode=ro``.
    """
    path = Path(path)
    wal, _ = _sidecars(path)
    if read_only_reason(path) is None or wal.exists():
        return f"{path.absolute().as_uri()}?mode=ro"
    return f"{path.absolute().as_uri()}?immutable=1"


def read_only_error(path: Path, reason: str) -> StoreError:
    """The one line a command that must record into a read-only database stops with."""
    return StoreError(f"runs database {path} is read-only ({reason}): pass --db FILE to record elsewhere, "
                      "or fix its permissions (or mount) so that it can be written")


def _connect_read_only(path: Path, reason: str) -> sqlite3.Connection:
    """A connection to a database this process cannot write (``connect(readonly=True)``)."""
    wal, shm = _sidecars(path)
    if wal.exists() and not shm.exists() and not os.access(path.parent, os.W_OK):
        raise StoreError(f"cannot read the runs database {path}: {reason}, and SQLite cannot read its "
                         f"{wal.name} without a {shm.name}; copy {path.name} and {wal.name} to a writable "
                         "folder and pass --db with the copy")
    conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                           isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA schema_version").fetchone()  # reads the header: not a database fails here
    except BaseException:
        conn.close()
        raise
    return conn


def connect(path: Path, *, readonly: bool = False) -> Database:
    """Open ``path`` with the pragmas every spkemb process uses.

    Parameters
    ----------
    path
        The database file. Created (with its folder) unless ``readonly``.
    readonly
        Refuse every write on this connection (``PRAGMA query_only``) and never
        create the file. A file this process cannot write is opened through
        ``read_only_uri``: nothing is created next to it.

    Returns
    -------
    Database
        A sqlite-utils database on a connection in autocommit mode: transactions
        are opened explicitly (``BEGIN`` / ``BEGIN IMMEDIATE``) by the store.

    Raises
    ------
    StoreError
        The file is missing (readonly), cannot be written (not readonly: checked
        before SQLite opens it, which would leave an empty ``-wal`` and ``-shm``),
        its folder cannot be created, or it is not a SQLite database.
    """
    path = Path(path)
    if readonly and not path.exists():
        raise StoreError(f"no runs database at {path}: pass --db FILE or set SPKEMB_DB, or start a "
                         "run first (the first train/validate/apply run creates it)")
    if path.exists() and not path.is_file():  # /dev/null: SQLite would make /dev/null-journal
        raise StoreError(f"{path} is no regular file (a device, pipe or folder): pass --db with a runs "
                         "database file")
    if not readonly:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder of the runs database {path}: {e}; "
                             "pass --db with a writable location") from e
    reason = read_only_reason(path)
    if reason is not None and not readonly:
        raise read_only_error(path, reason)
    try:
        if reason is not None:
            return Database(_connect_read_only(path, reason), execute_plugins=False)
        # isolation_level=None: the sqlite3 module never opens implicit (deferred)
        # transactions; the store says BEGIN IMMEDIATE itself before any write.
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _refuse_foreign(conn, path)
        if is_network_fs(path):
            # WAL needs shared memory between processes on one host: not on NFS & co.
            # Writers use event files there (engine.store.events); this is for readers.
            if not readonly:
                conn.execute("PRAGMA journal_mode = DELETE")
        else:
            mode = _switch_to_wal(conn)
            if mode.lower() != "wal" and not readonly:
                raise StoreError(f"cannot switch {path} to WAL mode (got {mode!r}); "
                                 "put the runs database on a local disk (--db)")
        # NORMAL is durable across process crashes in WAL mode; only an OS crash can
        # lose the last commits, never corrupt the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot open the runs database {path}: {e}; {_open_advice(e, path)}") from e
    return Database(conn, execute_plugins=False)


def _open_advice(error: sqlite3.DatabaseError, path: Path) -> str:
    """What to do when SQLite cannot open ``path``: a write beside it that failed (a full disk: reading a
    WAL database makes its ``-shm``) is no foreign file to move aside."""
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_IOERR") or name in ("SQLITE_FULL", "SQLITE_CANTOPEN"):
        return (f"SQLite could not write beside it ({path.name}-shm, {path.name}-wal), as on a full disk: free "
                "some space in its folder, or copy the database to another disk and pass --db")
    return "if the file is not a spkemb runs database, move it aside or pass --db with another file"


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """Leave another program's SQLite file as it is: before anything is written to it (the switch to
    WAL, the schema), a file with tables and no ``runs`` table is refused."""
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite%'")]
    if names and "runs" not in names:
        raise StoreError(f"{path} is not a spkemb runs database: it is a SQLite database of other tables "
                         f"({listed(sorted(names), shown=5)}), left as it is; pass --db with a runs database or a new "
                         "file")


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """``PRAGMA journal_mode = WAL``; the journal mode it answers.

    Processes that open a fresh file together (a queue's first trials, torchrun's ranks) all switch
    it: SQLite answers SQLITE_BUSY at once to those whose wait could deadlock, without its busy
    handler. They try again until the busy timeout, as the handler would have.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def one_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """The reads inside see one state of the file (a read transaction), unless one is open already.

    Without it each statement sees the file as it is then, and a writer committing between two
    reads makes them disagree (a run's pick read before it, its stale extractions after it).
    """
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")  # it only read: nothing to keep or undo


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The id of the row an INSERT through ``cursor`` just made."""
    if cursor.lastrowid is None:  # sqlite3 sets it after every INSERT: only a misuse lands here
        raise StoreError("no row was inserted")
    return cursor.lastrowid


def open_write_queue(path: Path) -> int:
    """The lock file on which writers of this host queue for the write lock (-1: none).

    SQLite's busy handler polls: it sleeps 1, 2, 5 ... up to 100 ms between tries,
    so with eight writers the write lock sat idle most of the time (bench/store.py:
    eight writers together slower than one alone). Writers first queue on an
    ``flock`` of ``runs.db-lock``, which the kernel hands to the next waiter as
    soon as it is released; ``busy_timeout`` still covers other programs.
    """
    if is_network_fs(path):
        return -1
    try:
        return os.open(f"{path}-lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return -1  # e.g. a read-only folder: SQLite's own locking still works
