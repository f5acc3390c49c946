"""``spkemb-engine queue``: one process per runs database that starts queued runs on free slots.

It runs detached (a session of its own), so that closing the TUI or losing the SSH session does not
stop it; an ``flock`` of ``DB-queue.lock`` keeps it alone on its database (the kernel drops the lock
when it dies, even by SIGKILL). Each queued run is claimed in one transaction before its ``train`` is
started (``engine.store.sweeps``); a new queue adopts the children of a dead one by pid + start time
and gives back claims no child took. Validation starts beside each run once the run is recorded;
sweep trials are pruned on validated EER (``engine.sweeps.pruning``) through the stop path (SIGTERM).
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shlex
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from engine.cli import one_line, parse_command, to_argv
from engine.console import say
from engine.errors import SpkembError
from engine.layout import TRAIN_LOG, TrainingDir, ValidationDir
from engine.requests import QueueRequest, TrainRequest, ValidateRequest
from engine.store import LIVE_STATUSES, Store, default_db_path, open_store
from engine.sweeps import processes
from engine.sweeps.processes import Child
from engine.sweeps.pruning import median_rule
from engine.sweeps.queue_control import cancel_runs, cancel_sweep, stop_queue
from engine.sweeps.slots import Slot, check_gpus_here, default_slots, parse_slots, same_slots, why_default


def lock_path(db: Path) -> Path:
    return Path(f"{db}-queue.lock")


def log_path(db: Path) -> Path:
    return Path(f"{db}-queue.log")


@dataclass
class Running:
    """A queued run this queue holds a slot for: its training, and the validation beside it."""

    run_id: int
    slot: str
    train: Child
    validate_argv: list[str] | None
    validate: Child | None = None
    trial: dict[str, Any] | None = None
    pruned: str | None = None
    seen: set[int] = field(default_factory=set)


def _device_of(slot: str) -> str:
    """The device part of a slot's name: ``cuda:0`` of ``cuda:0/1``, ``cpu`` of ``cpu/0``."""
    return slot.partition("/")[0]


def _with_device(argv: list[str], device: str) -> list[str]:
    """A recorded train or validate command line, given the slot's device."""
    command, request = parse_command(argv)
    assert isinstance(request, TrainRequest | ValidateRequest)
    return to_argv(dataclasses.replace(request, device=device), command)


class Queue:
    """The loop: adopt what a previous queue started, then look every ``poll`` seconds."""

    def __init__(self, store: Store, slots: list[Slot], slots_text: str) -> None:
        self.store, self.slots = store, {s.name: s for s in slots}
        self.queue_id = store.start_queue(slots_text)
        self.running: dict[int, Running] = {}
        self.stop_signal: str | None = None

    # -- the queue's own life ------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signal.Signals(signum).name

    def run(self, poll: float, idle_exit: float) -> str:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.adopt()
        idle_since = time.monotonic()
        while self.stop_signal is None:
            try:
                self.step()
            except SpkembError as e:  # e.g. the database locked for a minute: the next look tries again
                say(f"queue: warning: {one_line(str(e))}")
            if self.running or self._waiting():
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= idle_exit:
                return "idle: nothing queued or running"
            time.sleep(poll)
        return f"stopped by {self.stop_signal}"

    def _waiting(self) -> bool:
        from engine.sweeps.study import wants_trials

        return any(e["claim"] is None for e in self.store.queue_entries()) or wants_trials(self.store)

    # -- one look ------------------------------------------------------------------------------
    def step(self) -> None:
        for held in list(self.running.values()):
            self._follow(held)
        self._prune()
        self._start_free()
        self.store.beat_queue(self.queue_id)

    def adopt(self) -> None:
        """Take over the runs a previous queue started; give back claims no child took."""
        for entry in self.store.queue_entries():
            if entry["claim"] is None:
                continue
            train = Child(entry["child_pid"], entry["child_start"]) if entry["child_pid"] else None
            if train is None or not train.alive():
                train = processes.find_claimed(entry["claim"]) if entry["status"] == "queued" else train
            validate = Child(entry["validate_pid"], entry["validate_start"]) if entry["validate_pid"] else None
            if validate is not None and not validate.alive():
                validate = None  # killed beside a live training: started again (it reuses the epochs it scored)
            if train is None or (not train.alive() and validate is None):
                if entry["status"] == "queued":
                    self.store.release(entry["run_id"])  # never started (or died before taking it): later, once
                else:
                    self._ended(entry["run_id"], None)
                continue
            if entry["child_pid"] != train.pid:
                self.store.set_child(entry["run_id"], pid=train.pid)
            # the validation of an ended training is followed too: the slot is free when both have ended
            trial = self.store.trial_of_run(entry["run_id"])
            slot = self._seat(entry["slot"])
            held = Running(entry["run_id"], slot, train, self._validate_argv(entry["validate"], slot),
                           validate, trial, pruned=(trial or {}).get("prune_reason"))
            self.running[held.run_id] = held
            child = f"pid {train.pid}" if train.alive() else f"its validation, pid {validate.pid}" if validate else ""
            say(f"queue: adopted run {held.run_id} on {held.slot} ({child})")

    def _seat(self, name: str) -> str:
        """The slot an adopted run holds: its own, or, started by a queue of other ``--slots`` (or its own
        taken by such a run), a free one of this queue on the same device (else its own name: the device
        is then over its slots, and no run starts there until enough have ended)."""
        held = {h.slot for h in self.running.values()}
        if name in self.slots and name not in held:
            return name
        return next((s for s in self.slots if s not in held and _device_of(s) == _device_of(name)), name)

    def _slot(self, name: str) -> Slot:
        """Slot ``name`` of this queue, or its device's for a run a queue of other ``--slots`` started."""
        return self.slots.get(name) or parse_slots(_device_of(name))[0]

    def _validate_argv(self, argv: list[str] | None, slot: str) -> list[str] | None:
        return None if argv is None else _with_device(argv, self._slot(slot).device)

    def _start_free(self) -> None:
        busy = {held.slot for held in self.running.values()}
        # no more runs on a device than this queue has slots there: runs adopted from a queue of other
        # --slots may fill it past the slots they were seated on
        on_device = Counter(_device_of(held.slot) for held in self.running.values())
        capacity = Counter(_device_of(name) for name in self.slots)
        for slot in (s for name, s in self.slots.items() if name not in busy):
            if on_device[_device_of(slot.name)] >= capacity[_device_of(slot.name)]:
                continue
            if self.stop_signal is not None:
                return
            claim = self.store.claim(slot.name, self.queue_id)
            if claim is None:
                from engine.sweeps.study import ask_next

                if not ask_next(self.store):
                    return
                claim = self.store.claim(slot.name, self.queue_id)
                if claim is None:
                    return
            train_argv = _with_device(claim.train, slot.device)
            request = parse_command(train_argv)[1]
            assert isinstance(request, TrainRequest)
            log = _train_log(request)
            child = processes.start(train_argv, log, slot, claim=claim.token)
            self.store.set_child(claim.run_id, pid=child.pid)
            self.running[claim.run_id] = Running(claim.run_id, slot.name, child,
                                                 self._validate_argv(claim.validate, slot.name),
                                                 trial=self.store.trial_of_run(claim.run_id))
            on_device[_device_of(slot.name)] += 1
            say(f"queue: started run {claim.run_id} on {slot.name} (pid {child.pid}), log {log}")

    def _follow(self, held: Running) -> None:
        """Start the validation once the run is recorded; free the slot when both have ended."""
        run = self.store.run(held.run_id)
        status = run["status"] if run else None
        train_alive = held.train.alive()
        if (held.validate is None and held.validate_argv is not None and held.pruned is None and train_alive
                and status in LIVE_STATUSES):
            request = parse_command(held.validate_argv)[1]
            assert isinstance(request, ValidateRequest)
            val = TrainingDir(Path(request.trn_dir)).validation(request.protocol, request.subset)
            log = ValidationDir(val.root).log
            held.validate = processes.start(held.validate_argv, log, self._slot(held.slot))
            self.store.set_child(held.run_id, pid=held.validate.pid, validate=True)
        if train_alive or (held.validate is not None and held.validate.alive()):
            return
        self._ended(held.run_id, held)

    def _ended(self, run_id: int, held: Running | None) -> None:
        """Both children are gone: record what they could not, and free the slot."""
        run = self.store.run(run_id)
        code = None if held is None else held.train.exit_code
        if run is not None and run["status"] == "queued" and code is None:
            self.store.release(run_id)  # it never took its run (killed while starting): started again later
        else:
            if run is not None and run["status"] in (*LIVE_STATUSES, "queued"):
                said = last_error(TrainingDir(Path(run["out_dir"])).log) if run["out_dir"] else None
                self.store.set_status(run_id, "failed", f"train exited (code {code}) without recording its end"
                                                        + (f": {said}" if said else f"; see its {TRAIN_LOG}"))
            trial = self.store.trial_of_run(run_id)
            reason = (held.pruned if held else None) or (trial or {}).get("prune_reason")
            if reason:
                self.store.set_status(run_id, "stopped", reason)
            self.store.end_entry(run_id)
            if trial is not None:
                from engine.sweeps.study import trial_ended

                trial_ended(self.store, trial, run_id)
        self.running.pop(run_id, None)
        if held is not None:
            ended = self.store.run(run_id) or {}  # a failed trial is said as such, with why (the log's reader)
            how = "ended" if ended.get("status") in (None, "completed") else f"{ended['status']}"
            say(f"queue: run {run_id} {how} on {held.slot}" + (f": {ended['reason']}" if how != "ended" and
                                                                 ended.get("reason") else ""))

    def _prune(self) -> None:
        by_sweep: dict[int, list[Running]] = {}
        for held in self.running.values():
            if held.trial is not None and held.pruned is None and held.train.alive():
                by_sweep.setdefault(held.trial["sweep_id"], []).append(held)
        for sweep_id, held_list in by_sweep.items():
            sweep = self.store.sweep(sweep_id)
            if sweep is None or sweep["prune"] == "none":
                continue
            eers = self.store.trial_eers(sweep_id)
            for held in held_list:
                verdict = self._verdict(sweep, held, eers)
                if verdict is not None:
                    self._prune_one(held, *verdict)

    def _verdict(self, sweep: dict[str, Any], held: Running,
                 eers: dict[int, dict[int, float]]) -> tuple[str, int] | None:
        """Why ``held`` should stop now, and at which epoch (None: it goes on)."""
        assert held.trial is not None
        own = eers.get(held.trial["id"], {})
        others = [v for trial, v in eers.items() if trial != held.trial["id"]]
        if sweep["method"] == "optuna":
            from engine.sweeps.study import optuna_prune

            return optuna_prune(sweep, held.trial, own, held.seen)
        verdict = median_rule(own, others, prune_after=sweep["prune_after"])
        return None if verdict is None else (verdict.reason, verdict.epoch)

    def _prune_one(self, held: Running, reason: str, epoch: int) -> None:
        assert held.trial is not None
        self.store.set_pruned(held.trial["id"], epoch=epoch, reason=reason)
        held.pruned = reason
        held.train.stop()
        if held.validate is not None:
            held.validate.stop()
        say(f"queue: run {held.run_id} {reason}")


def last_error(log: Path) -> str | None:
    """The error line a command ended its log with (``spkemb-engine train: error: …``, without that
    prefix): why a trial the queue started failed before it could record it (a slot's GPU that is not
    there, say)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    errors = [line.split(": error: ", 1)[1] for line in tail
              if line.startswith("spkemb-engine ") and ": error: " in line]
    return errors[-1][:500] if errors else None


def _train_log(request: TrainRequest) -> Path:
    from engine.layout import ExperimentDir

    return ExperimentDir(Path(request.exp_dir)).training(request.protocol, request.subset).log


def ensure_queue(db: Path, request: QueueRequest) -> None:
    """Start the database's queue as ``request`` says (slots, poll, idle exit), detached, unless one runs already."""
    slots = request.slots or default_slots()
    with open_store(db) as store:
        live = store.live_queue()
    if live is not None:
        running = str(live["slots"])
        if same_slots(running, slots):
            say(f"the queue of {db} (pid {live['pid']}, slots {running}) starts the queued runs")
        else:
            say(f"the queue of {db} (pid {live['pid']}) keeps its slots {running} (asked: {slots}) and starts the "
                f"queued runs there; stop it with `spkemb-engine queue --stop --db {shlex.quote(str(db))}` to "
                "change them")
        return
    pid = processes.detach(to_argv(dataclasses.replace(request, slots=slots, detach=False, db=str(db))), log_path(db))
    say(f"started the queue of {db} (pid {pid}, slots {slots}); log {log_path(db)}")


def cmd_queue(args: QueueRequest) -> int:
    db = default_db_path(args.db).resolve()
    if args.slots is not None:  # a misspelt --slots is refused whatever else the queue is asked
        parse_slots(args.slots)
    if args.cancel:
        return cancel_runs(db, args.cancel)
    if args.cancel_sweep is not None:
        return cancel_sweep(db, args.cancel_sweep)
    if args.stop:
        return stop_queue(db)
    slots_text = args.slots or default_slots()
    slots = parse_slots(slots_text)
    check_gpus_here(slots, slots_text)
    if args.slots is None:
        say(why_default(slots_text))
    args = dataclasses.replace(args, slots=slots_text)
    if args.detach:
        ensure_queue(db, args)
        return 0
    db.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(lock_path(db), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say(f"queue: another queue runs for {db}; leaving the queued runs to it")
        os.close(lock)
        return 0
    with open_store(db) as store:
        queue = Queue(store, slots, slots_text)
        say(f"queue: pid {os.getpid()} on {db}, slots {', '.join(queue.slots)}")
        reason = "failed"
        try:
            reason = queue.run(args.poll, args.idle_exit)
        finally:
            store.end_queue(queue.queue_id, reason)
            say(f"queue: {reason}")
    os.close(lock)
    return 0
