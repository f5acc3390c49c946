"""``queue --stop``, ``--cancel RUN_ID…`` and ``--cancel-sweep NAME``: the queue told what not to do, from
another shell (or the TUI's ``x`` on a queued run)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from engine.console import say
from engine.errors import StoreError
from engine.store import Store, open_store


def stop_queue(db: Path) -> int:
    """Ask the database's running queue to stop (SIGTERM); the runs it started go on."""
    _existing(db)  # a misspelt --db names no queue: it is not made into an empty database
    with open_store(db) as store:
        live = store.live_queue()
    if live is None:
        say(f"no queue runs for {db}")
        return 0
    os.kill(int(live["pid"]), signal.SIGTERM)
    say(f"asked the queue of {db} (pid {live['pid']}) to stop; the runs it started go on")
    return 0


def cancel_runs(db: Path, run_ids: tuple[int, ...]) -> int:
    """Take queued runs off the queue (the TUI's ``x`` on a queued run); every id is tried, and the
    refused ones are named together."""
    _existing(db)
    refused = []
    with open_store(db) as store:
        _give_back_dead_claims(store)
        for run_id in dict.fromkeys(run_ids):
            if store.cancel_queued(run_id):
                _tell_studies(store, [run_id])
                say(f"queue: run #{run_id} taken off the queue (recorded stopped: cancelled while queued)")
                continue
            run = store.run(run_id)
            refused.append(f"run {run_id} " + ("is not in the runs database" if run is None else
                                               "is being started by a queue" if run["status"] == "queued" else
                                               f"is {run['status']}, not waiting"))
    if refused:
        raise StoreError(f"--cancel: {'; '.join(refused)} — only a queued run no queue has started can be taken "
                         "off (`spkemb-engine runs --status queued` lists them)")
    return 0


def cancel_sweep(db: Path, name: str) -> int:
    """End the sweeps named ``name``: no more trials, their queued runs off the queue."""
    _existing(db)
    with open_store(db) as store:
        found = [s for s in store.sweeps() if s["name"] == name]
        if not found:
            known = ", ".join(dict.fromkeys(s["name"] for s in store.sweeps())) or "none"
            raise StoreError(f"--cancel-sweep {name}: no sweep of that name in {db} (its sweeps: {known})")
        _give_back_dead_claims(store)
        for sweep in found:
            cancelled = store.end_sweep(sweep["id"])
            _tell_studies(store, cancelled)
            said = f"run(s) {', '.join(f'#{i}' for i in cancelled)} taken off the queue" if cancelled else \
                "no queued run"
            say(f"queue: sweep {name} makes no more trials ({len(store.sweep_trials(sweep['id']))} made); {said}")
    return 0


def _give_back_dead_claims(store: Store) -> None:
    """With no queue alive, give back the claims a dead one took before starting their run (a SIGKILL
    between the two): nothing but the next queue would start those runs, and they could not be taken
    off the queue. A run whose child was started stays claimed: the next queue adopts it."""
    if store.live_queue() is not None:
        return
    for entry in store.queue_entries():
        if entry["claim"] is not None and entry["child_pid"] is None and entry["status"] == "queued":
            store.release(entry["run_id"])


def _tell_studies(store: Store, run_ids: list[int]) -> None:
    """Tell an Optuna trial's study that it ended, failed, when its run is taken off the queue: the
    study held it running for good otherwise (a trial under way, to the sampler and to a reader)."""
    for run_id in run_ids:
        trial = store.trial_of_run(run_id)
        if trial is not None and trial.get("optuna_trial") is not None:
            from engine.sweeps.study import trial_ended

            trial_ended(store, trial, run_id)


def _existing(db: Path) -> None:
    """Refuse a runs database that is not there (opening it would make an empty one)."""
    if not db.exists():
        raise StoreError(f"no runs database at {db}: pass --db FILE or set SPKEMB_DB")
