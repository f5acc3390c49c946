"""How sweeps, their trials and the queue read in the Sweeps screen: pure formatting, no I/O."""

from __future__ import annotations

from typing import Any

from app.data.sweeps import QueueProcess, Sweep, Trial
from engine.records.runs import clock_text

#: (column key, header) of the sweeps table and of the trials table
SWEEP_COLUMNS = [("id", "#"), ("name", "sweep"), ("method", "method"), ("trials", "trials"), ("queued", "queued"),
                 ("running", "running"), ("pruned", "pruned"), ("done", "done"), ("best", "best EER"),
                 ("slots", "slots")]
#: a trial's figures before its status, which a pruning makes 46 characters long (at 80 columns the
#: best EER was out of sight behind it)
TRIAL_COLUMNS = [("number", "trial"), ("run", "run"), ("epoch", "epoch"), ("eer", "best EER"), ("state", "status"),
                 ("params", "parameters"), ("seed", "seed")]


def value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def params_text(params: dict[str, Any]) -> str:
    """``margin=0.2  learning_rate=0.01``: each key by its last part."""
    return "  ".join(f"{k.rsplit('.', 1)[-1]}={value_text(v)}" for k, v in params.items())


def eer_text(eer: float | None) -> str:
    return "" if eer is None else f"{100 * eer:.2f} %"


def sweep_row(sweep: Sweep) -> dict[str, str]:
    best = sweep.best()
    return {"id": str(sweep.id), "name": sweep.name, "method": sweep.method,
            "trials": f"{len(sweep.trials)}/{sweep.planned}", "queued": str(sweep.count("queued")),
            "running": str(sweep.count("running", "indexing")), "pruned": str(sweep.count("pruned")),
            "done": str(sweep.count("completed")), "best": "" if best is None else
            f"{eer_text(best.best_eer)} (trial {best.number})", "slots": sweep.slots}


def trial_row(trial: Trial) -> dict[str, str]:
    epoch = "" if trial.epoch is None and trial.target_epoch is None else \
        f"{'' if trial.epoch is None else trial.epoch}/{'' if trial.target_epoch is None else trial.target_epoch}"
    return {"number": f"{trial.number:03d}", "run": "" if trial.run_id is None else f"#{trial.run_id}",
            "state": trial.state, "params": params_text(trial.params), "seed": str(trial.seed), "epoch": epoch,
            "eer": eer_text(trial.best_eer)}


def queue_text(queue: QueueProcess | None, now: float) -> str:
    if queue is None:
        return "queue: not running (g starts it)"
    since = clock_text(queue.started_at, "%H:%M")
    return f"queue: pid {queue.pid} on {queue.host}, slots {queue.slots}, since {since} (s stops it)"
