"""Read-only SQL on the runs database: the TUI's Query screen and ``Store.query``.

``PRAGMA query_only`` is not enough: ATTACH still creates files, VACUUM INTO
leaves an empty one, and ``PRAGMA journal_mode=DELETE`` (or ``query_only=OFF``)
is obeyed. Each query therefore runs on its own read-only URI connection
(``mode=ro``: SQLite never opens the database file for writing; ``immutable=1`` for a
file this process cannot write, see ``engine.store.db.read_only_uri``) with an
authorizer (https://www.sqlite.org/c3ref/set_authorizer.html) that lets through
reads only; it is consulted while a statement is compiled, so a refused
statement never runs.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import QueryStopped, StoreError
from engine.store.db import BUSY_TIMEOUT_MS, read_only_uri

#: SQLite statements that are not reads, refused before SQLite sees them: the authorizer is
#: never asked about some (REINDEX) or names them by a step (VACUUM INTO attaches its file);
#: SELECT, WITH, VALUES, EXPLAIN and PRAGMA are left to the authorizer, typos to SQLite
_WRITE_KEYWORDS = frozenset({
    "ALTER", "ANALYZE", "ATTACH", "BEGIN", "COMMIT", "CREATE", "DELETE", "DETACH", "DROP", "END",
    "INSERT", "REINDEX", "RELEASE", "REPLACE", "ROLLBACK", "SAVEPOINT", "UPDATE", "VACUUM",
})

#: PRAGMAs that only report, allowed without a value (``PRAGMA journal_mode``, not ``= DELETE``)
_REPORTING_PRAGMAS = frozenset({
    "application_id", "busy_timeout", "collation_list", "compile_options", "data_version",
    "database_list", "encoding", "foreign_keys", "freelist_count", "function_list", "journal_mode",
    "module_list", "page_count", "page_size", "pragma_list", "schema_version", "user_version",
})
#: PRAGMAs that only report and take a table or index name (or a row limit) as their argument
_REPORTING_PRAGMAS_WITH_ARG = frozenset({
    "foreign_key_check", "foreign_key_list", "index_info", "index_list", "index_xinfo",
    "integrity_check", "quick_check", "table_info", "table_list", "table_xinfo",
})

_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_temp_master", "sqlite_schema"})
_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})

#: action code -> what a refusal names (https://www.sqlite.org/c3ref/c_alter_table.html)
_ACTION_NAMES = {
    sqlite3.SQLITE_INSERT: "INSERT", sqlite3.SQLITE_UPDATE: "UPDATE", sqlite3.SQLITE_DELETE: "DELETE",
    sqlite3.SQLITE_ATTACH: "ATTACH", sqlite3.SQLITE_DETACH: "DETACH",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE", sqlite3.SQLITE_ANALYZE: "ANALYZE",
    sqlite3.SQLITE_REINDEX: "REINDEX", sqlite3.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE",
    sqlite3.SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE",
}

_HELP = "the query box only reads: one SELECT, WITH, VALUES, EXPLAIN or reporting PRAGMA"
_COMMENT = re.compile(r"\s*(--[^\n]*(\n|$)|/\*.*?(\*/|$))", re.S)


def _first_keyword(sql: str) -> str:
    """The first word of ``sql`` after leading comments and blanks, upper-cased."""
    rest = sql
    while (match := _COMMENT.match(rest)) and match.end() > 0:
        rest = rest[match.end():]
    word = re.match(r"\s*([A-Za-z_]+)", rest)
    return word.group(1).upper() if word else ""


def _refusal(action: int, arg1: str | None, arg2: str | None) -> str | None:
    """None when the authorizer may allow ``action``; else what to name in the refusal."""
    if action in _ALLOWED_ACTIONS:
        return None
    if action == sqlite3.SQLITE_UPDATE and arg1 in _SCHEMA_TABLES:
        # asked once per connection when a table-valued PRAGMA (pragma_table_info) is
        # first used; an UPDATE of the schema itself is still refused (mode=ro, no writable_schema)
        return None
    if action == sqlite3.SQLITE_FUNCTION:
        # fts3_tokenizer() hands out (and takes) a pointer into the process
        return f"{arg2}()" if arg2 in ("load_extension", "fts3_tokenizer") else None
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if (arg2 is None and name in _REPORTING_PRAGMAS) or name in _REPORTING_PRAGMAS_WITH_ARG:
            return None
        return f"PRAGMA {name}" + ("" if arg2 is None else f"={arg2}")
    if action == sqlite3.SQLITE_TRANSACTION:
        return (arg1 or "BEGIN").upper()
    if action == sqlite3.SQLITE_SAVEPOINT:
        return "SAVEPOINT"
    # the CREATE/DROP codes (1..17) are all schema changes: one name for them
    return _ACTION_NAMES.get(action, "a schema change" if 1 <= action <= 17 else f"action {action}")


def _connect(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot open {path} to read it: {e}") from e


#: rows ``query`` returns at most unless told otherwise: 10 M rows took 1.95 GB
DEFAULT_ROW_LIMIT = 10_000
#: the longest text or blob a query may make or return (SQLite's SQLITE_LIMIT_LENGTH on its connection)
MAX_VALUE_BYTES = 8_000_000
#: text and blobs a result may hold in all: the rows past it are left out, as past the row limit
MAX_RESULT_BYTES = 64_000_000
#: seconds a query may run unless told otherwise (the TUI passes its own, shorter limit)
DEFAULT_TIME_LIMIT_S = 30.0
#: SQLite virtual-machine instructions between two looks at the clock and the stop flag
#: (well under a millisecond of work; https://www.sqlite.org/c3ref/progress_handler.html)
_CHECK_EVERY = 10_000


@dataclass(frozen=True)
class QueryResult:
    """What a query returned: its columns, its rows and whether rows were left out.

    Unpacks and indexes as the ``(columns, rows)`` pair that ``query`` returned before
    it had a row limit, so ``columns, rows = store.query(sql)`` keeps working.
    """

    columns: list[str]
    rows: list[tuple[Any, ...]]
    #: the statement had more rows than the limit: ``rows`` holds the first ``limit`` only
    truncated: bool = False

    def __iter__(self) -> Iterator[Any]:
        return iter((self.columns, self.rows))

    def __getitem__(self, index: int) -> Any:
        return (self.columns, self.rows)[index]


class QueryStop:
    """Stops a running ``query`` from another thread (the TUI's Escape key, or its exit).

    ``stop`` may come before, during or after the query: before, the query stops at its
    first look at the flag; during, ``sqlite3_interrupt`` also ends work the progress
    handler does not see (a long sort); after, it does nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Stop the query now (from any thread); it raises ``QueryStopped`` with ``interrupted``."""
        with self._lock:
            self._stopped = True
            if self._conn is not None:
                self._conn.interrupt()

    def _attach(self, conn: sqlite3.Connection | None) -> None:
        with self._lock:
            self._conn = conn


def query(path: Path, sql: str, params: Sequence[Any] = (), limit: int | None = DEFAULT_ROW_LIMIT, *,
          time_limit: float | None = DEFAULT_TIME_LIMIT_S, stop: QueryStop | None = None) -> QueryResult:
    """Run one statement that only reads ``path``.

    Parameters
    ----------
    limit
        Rows returned at most (None: every row); the result says when some were left out.
    time_limit
        Seconds the statement may run, fetching included (None: no limit).
    stop
        Lets another thread stop the statement (``QueryStop.stop``).

    Raises
    ------
    QueryStopped
        ``query stopped after N s (time limit; ...)`` or ``query stopped after N s (interrupted)``.
    StoreError
        ``read-only: X is not allowed`` for a statement that would write, attach,
        change a setting or open a transaction, or for more than one statement;
        ``query on PATH failed: ...`` for SQL that SQLite rejects.
    """
    keyword = _first_keyword(sql)
    if keyword in _WRITE_KEYWORDS:
        raise StoreError(f"read-only: {keyword} is not allowed ({_HELP})")
    refused: list[str] = []
    stop = stop or QueryStop()

    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None,
                  _trigger: str | None) -> int:
        what = _refusal(action, arg1, arg2)
        if what is None:
            return sqlite3.SQLITE_OK
        refused.append(what)
        return sqlite3.SQLITE_DENY

    started = time.monotonic()
    deadline = None if time_limit is None else started + time_limit
    timed_out = False

    def progress() -> int:
        # a non-zero return makes SQLite abandon the statement (SQLITE_INTERRUPT)
        nonlocal timed_out
        if stop.stopped:
            return 1
        if deadline is not None and time.monotonic() > deadline:
            timed_out = True
            return 1
        return 0

    conn = _connect(Path(path))
    stop._attach(conn)
    try:
        # one value is made by one instruction, which no progress handler interrupts: zeroblob(1e9)
        # ran 22 s past a 5 s limit; a value over this size is an error at once
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.set_authorizer(authorize)
        conn.set_progress_handler(progress, _CHECK_EVERY)
        cursor = conn.execute(sql, tuple(params))
        columns = [d[0] for d in cursor.description or ()]
        rows, over_budget = _fetch(cursor, limit)
        cursor.close()
    except (sqlite3.DatabaseError, sqlite3.Warning, sqlite3.ProgrammingError) as e:
        if stop.stopped:
            raise QueryStopped(f"query stopped after {time.monotonic() - started:.1f} s (interrupted)",
                               seconds=time.monotonic() - started, interrupted=True) from e
        if timed_out:
            raise QueryStopped(f"query stopped after {time_limit:g} s (time limit; narrow it with WHERE or "
                               "LIMIT, or allow it more time)", seconds=float(time_limit or 0),
                               interrupted=False) from e
        if refused:
            raise StoreError(f"read-only: {refused[0]} is not allowed ({_HELP})") from e
        if "readonly database" in str(e):  # mode=ro caught what the authorizer let through
            raise StoreError(f"read-only: writing is not allowed ({_HELP})") from e
        if "one statement" in str(e):
            raise StoreError(f"read-only: one statement at a time ({_HELP})") from e
        raise StoreError(f"query on {path} failed: {e}") from e
    finally:
        stop._attach(None)
        conn.close()
    truncated = over_budget or (limit is not None and len(rows) > limit)
    return QueryResult(columns, rows[:limit] if limit is not None and len(rows) > limit else rows, truncated)


def _fetch(cursor: sqlite3.Cursor, limit: int | None) -> tuple[list[tuple[Any, ...]], bool]:
    """Up to ``limit + 1`` rows, and whether the text and blobs of ``MAX_RESULT_BYTES`` ended the fetch
    first (10,000 rows of one 8 MB value each are 80 GB)."""
    rows: list[tuple[Any, ...]] = []
    size = 0
    for row in cursor:
        rows.append(row)
        size += sum(len(v) for v in row if isinstance(v, (str, bytes)))
        if size > MAX_RESULT_BYTES:
            return rows, True
        if limit is not None and len(rows) > limit:
            break
    return rows, False
