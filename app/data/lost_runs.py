"""The TUI's marking of runs whose process is gone, on each refresh of the runs list."""

from __future__ import annotations

from pathlib import Path

from app.data.reader import store_at
from engine.store import read_only_reason


def mark_lost(path: Path) -> dict[int, str]:
    """Turn running runs whose process is gone into ``lost`` (a short write transaction).

    A database this process may only read (read-only file, folder or media) is not written: its
    dead runs are returned (id -> reason), for the list to show them ``lost`` rather than running.
    """
    if read_only_reason(path) is not None:
        with store_at(path) as store:
            return {int(r["id"]): str(r["reason"]) for r in store.lost_runs()}
    with store_at(path, readonly=False) as store:
        store.mark_lost()
    return {}


def cancel_queued(path: Path, run_id: int) -> bool:
    """Take a queued run off the queue before any queue starts it (recorded ``stopped``)."""
    with store_at(path, readonly=False) as store:
        return store.cancel_queued(run_id)
