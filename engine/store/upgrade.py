"""Applying the schema migrations (``engine.store.migrations``) to a runs database.

``migrate`` applies the pending ones under one write lock (``BEGIN IMMEDIATE``) and re-checks what
is pending once it holds it, so that ten processes opening a fresh file together apply each
migration exactly once. What is pending is read in one snapshot of the file: read in two, another
opener's migrations could land between "none applied" and "the runs table exists", and a fresh file
be refused as damaged. ``PRAGMA user_version`` mirrors the number applied, for people using
``sqlite3``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from engine.errors import StoreError
from engine.store.db import one_snapshot
from engine.store.migrations import known_migrations, migrations


def _applied(db: Database) -> list[str]:
    return [m.name for m in migrations.applied(db)]


def _check_not_newer(path: Path, applied: list[str]) -> None:
    unknown = [name for name in applied if name not in known_migrations()]
    if unknown:
        raise StoreError(
            f"the runs database {path} was written by a newer spkemb (schema migrations "
            f"{', '.join(unknown)} are unknown to this release, which knows "
            f"{len(known_migrations())}): upgrade spkemb (pip install -U spkemb), or pass "
            "--db with another file")


def pending(db: Database, path: Path) -> list[str]:
    """Migrations not yet applied to ``db``; refuses a file from a newer release.

    Raises
    ------
    StoreError
        The file records migrations this release does not know.
    """
    with one_snapshot(db.conn):
        applied = _applied(db)
        has_runs = db["runs"].exists()
    _check_not_newer(path, applied)
    if not applied and has_runs:  # migrating again would fail on "table runs already exists"
        raise StoreError(f"the runs database {path} has its runs but no record of its schema (the "
                         f"{migrations.migrations_table} table is gone or emptied): restore the file from a "
                         "backup, or pass --db with another file")
    return [name for name in known_migrations() if name not in applied]


def migrate(db: Database, path: Path, *, stop_before: str | None = None) -> list[str]:
    """Apply the pending migrations, one process at a time.

    Parameters
    ----------
    db
        A connection in autocommit mode (``engine.store.db.connect``).
    path
        The file, for error messages.
    stop_before
        Leave this migration and the later ones pending (for tests of old files).

    Returns
    -------
    list[str]
        The migrations this call applied (empty when another process did them).

    Raises
    ------
    StoreError
        The file is from a newer release, or a migration failed.
    """
    if not pending(db, path):
        return []
    try:
        # the write lock first, then look again: another opener may have migrated
        # while we waited for it.
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            todo = pending(db, path)
            if stop_before in todo:
                todo = todo[:todo.index(stop_before)]
            if todo:
                migrations.apply(db, stop_before=stop_before)
                db.conn.execute(f"PRAGMA user_version = {len(_applied(db))}")
            db.conn.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot upgrade the schema of the runs database {path}: {e}; "
                         "make sure no other program holds it locked, or pass --db") from e
    return todo
