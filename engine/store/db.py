"""One SQLite connection to the runs database, set up the way every process needs it.

The order of the pragmas matters: ``busy_timeout`` first, so that switching the
file to WAL (which takes a lock) waits for a concurrent opener instead of failing
with SQLITE_BUSY at once; then ``journal_mode=WAL`` so readers (the TUI) never
block writers (training, validation). See https://www.sqlite.org/wal.html.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path


def _import_sqlite_utils_without_pandas() -> None:
    # sqlite-utils imports pandas (about a second, per process) only to recognise
    # pandas values in inserts, which the store never makes: hide pandas during that
    # import unless it is already loaded; it stays importable for everyone else.
    if "pandas" in sys.modules:
        import sqlite_utils  # noqa: F401
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils  # noqa: F401
    finally:
        if sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]


_import_sqlite_utils_without_pandas()

from sqlite_utils import Database  # noqa: E402

from engine.errors import StoreError  # noqa: E402
from engine.store.netfs import is_network_fs  # noqa: E402

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


def connect(path: Path, *, readonly: bool = False) -> Database:
    """Open ``path`` with the pragmas every spkemb process uses.

    Parameters
    ----------
    path
        The database file. Created (with its folder) unless ``readonly``.
    readonly
        Refuse every write on this connection (``PRAGMA query_only``) and never
        create the file.

    Returns
    -------
    Database
        A sqlite-utils database on a connection in autocommit mode: transactions
        are opened explicitly (``BEGIN`` / ``BEGIN IMMEDIATE``) by the store.

    Raises
    ------
    StoreError
        The file is missing (readonly), its folder cannot be created, or it is not
        a SQLite database.
    """
    path = Path(path)
    if readonly and not path.exists():
        raise StoreError(f"no runs database at {path}: pass --db FILE or set SPKEMB_DB, or start a "
                         "run first (the first train/validate/apply run creates it)")
    if not readonly:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder of the runs database {path}: {e}; "
                             "pass --db with a writable location") from e
    try:
        # isolation_level=None: the sqlite3 module never opens implicit (deferred)
        # transactions; the store says BEGIN IMMEDIATE itself before any write.
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if is_network_fs(path):
            # WAL needs shared memory between processes on one host: not on NFS & co.
            # Writers use event files there (engine.store.events); this is for readers.
            if not readonly:
                conn.execute("PRAGMA journal_mode = DELETE")
        else:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
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
        raise StoreError(f"cannot open the runs database {path}: {e}; if the file is not a spkemb "
                         "runs database, move it aside or pass --db with another file") from e
    return Database(conn, execute_plugins=False)
