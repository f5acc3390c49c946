"""The TUI's one edit of a run's row: its group, tags and note (the ``t`` dialog of the run detail)."""

from __future__ import annotations

from pathlib import Path

from app.data.reader import store_at
from engine.errors import StoreError
from engine.store import read_only_reason


def save_labels(path: Path, run_id: int, *, group: str, tags: tuple[str, ...], note: str) -> None:
    """Give run ``run_id`` exactly this group ("" for none), these tags and this note (one short
    write transaction, as ``spkemb-engine tag``).

    Raises
    ------
    StoreError
        The database may only be read here, or the run is gone.
    """
    reason = read_only_reason(path)
    if reason is not None:
        raise StoreError(f"runs database {path} is read-only ({reason}): tag runs where it can be written")
    with store_at(path, readonly=False) as store:
        row = store.run(run_id)
        if row is None:
            raise StoreError(f"no run {run_id} in {path}")
        removed = [t for t in row["tags"] if t not in tags]
        store.set_labels(run_id, run_group=group, add_tags=list(tags), remove_tags=removed, note=note)
