"""The TUI's import of event files into the runs database, on each refresh of the runs list."""

from __future__ import annotations

from pathlib import Path

from app.data.reader import store_at
from engine.layout import EVENT_GLOBS
from engine.store import read_only_reason
from engine.store.importing import import_events


def ingest_events(path: Path, exp_dirs: list[Path]) -> int:
    """Bring the event files of these experiments into the database (docs/database.md: runs on NFS,
    Lustre, GPFS or BeeGFS write them instead); idempotent. Returns the records added."""
    files = sorted({f for exp in exp_dirs for pattern in EVENT_GLOBS for f in Path(exp).glob(pattern)})
    if not files or read_only_reason(path) is not None:  # a database we may only read records nothing
        return 0
    with store_at(path, readonly=False) as store:
        return sum(import_events(f, store)["records"] for f in files)
