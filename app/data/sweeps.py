"""What the Sweeps screen reads: the sweeps, the queue process, and each trial with its run, as typed records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import StoreError
from engine.layout import TrainingDir
from engine.store import open_store


@dataclass(frozen=True)
class QueueProcess:
    """The live ``spkemb-engine queue`` of the database."""

    id: int
    pid: int
    pid_start: float | None
    host: str
    slots: str
    started_at: float


@dataclass(frozen=True)
class Trial:
    """One trial of a sweep and where its run stands."""

    number: int
    exp_dir: str
    params: dict[str, Any]
    seed: int
    run_id: int | None
    status: str | None
    slot: str | None
    claimed: bool
    epoch: int | None
    target_epoch: int | None
    best_eer: float | None
    prune_reason: str | None
    out_dir: str | None
    #: the epoch of the lowest validated EER (the checkpoint a fork starts from)
    best_epoch: int | None = None

    @property
    def state(self) -> str:
        """queued, starting on SLOT, running on SLOT, pruned at ..., completed, failed, ..."""
        if self.prune_reason:
            return self.prune_reason
        if self.status is None:
            return "not started"
        if self.status == "queued":
            return f"starting on {self.slot}" if self.claimed else "queued"
        if self.status in ("running", "indexing"):
            return f"{self.status} on {self.slot}" if self.slot else self.status
        return self.status

    def best_checkpoint(self) -> Path | None:
        """The checkpoint of the best validated epoch (for a fork), when known."""
        if self.out_dir is None or self.best_epoch is None:
            return None
        return TrainingDir(Path(self.out_dir)).checkpoint(self.best_epoch)


@dataclass(frozen=True)
class Sweep:
    id: int
    name: str
    method: str
    planned: int
    slots: str
    prune: str
    keys: tuple[str, ...]
    trials: tuple[Trial, ...]

    def count(self, *states: str) -> int:
        return sum(1 for t in self.trials if (t.status in states and not t.prune_reason)
                   or ("pruned" in states and t.prune_reason))

    def best(self) -> Trial | None:
        """The trial of lowest validated EER."""
        scored = [t for t in self.trials if t.best_eer is not None]
        return min(scored, key=lambda t: t.best_eer or 0.0) if scored else None


@dataclass(frozen=True)
class SweepsState:
    sweeps: tuple[Sweep, ...]
    queue: QueueProcess | None
    #: why the database could not be read (the screen says so rather than "no sweep")
    error: str | None = None


def _trial(row: dict[str, Any], best_epochs: dict[int, int]) -> Trial:
    run_id = row["train_run_id"]
    return Trial(number=row["number"], exp_dir=row["exp_dir"], params=row["params"], seed=row["seed"], run_id=run_id,
                 status=row["status"], slot=row["slot"], claimed=row["claim"] is not None, epoch=row["epoch"],
                 target_epoch=row["target_epoch"], best_eer=row["best_eer"], prune_reason=row["prune_reason"],
                 out_dir=row["out_dir"], best_epoch=best_epochs.get(run_id) if run_id else None)


def read_sweeps(db_path: Path) -> SweepsState:
    """Every sweep with its trials, and the live queue; empty when the database is missing, with the
    reason when it cannot be read."""
    if not Path(db_path).exists():
        return SweepsState((), None)
    try:
        with open_store(db_path, readonly=True) as store:
            queue = store.live_queue()
            sweeps = []
            for s in store.sweeps():
                rows = store.sweep_trials(s["id"])
                best_epochs = store.best_epochs([r["train_run_id"] for r in rows if r["train_run_id"]])
                sweeps.append(Sweep(id=s["id"], name=s["name"], method=s["method"], planned=s["planned"],
                                    slots=s["slots"], prune=s["prune"], keys=tuple(s["space"]),
                                    trials=tuple(_trial(r, best_epochs) for r in rows)))
    except StoreError as e:
        return SweepsState((), None, error=str(e))
    process = None if queue is None else QueueProcess(queue["id"], queue["pid"], queue["pid_start"], queue["host"],
                                                      queue["slots"], queue["started_at"])
    return SweepsState(tuple(sweeps), process)
