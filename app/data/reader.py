"""Reads of the runs database for the TUI, run in worker threads.

Each call opens the store, reads in short transactions and closes it again: no cursor or
connection is held across refreshes, so WAL checkpoints are never held back (docs/database.md,
"Many processes, one file").
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config.networks import config_network, network_name
from engine.records import (
    Checkpoint,
    DataProblem,
    DiarizationCheck,
    EpochSummary,
    Extraction,
    RecordedValidation,
    Run,
    StaleExtraction,
)
from engine.records.fields import field_names
from engine.records.labels import GroupEpoch, GroupSummary
from engine.records.runs import newest_picks
from engine.store import QueryResult, QueryStop, open_store
from engine.store.typed_reads import run_of


@contextmanager
def store_at(path: Path, readonly: bool = True) -> Iterator[Any]:
    """The store at ``path``; read-only, its reads see one state of the file (a refresh reads a run,
    then its children and their extractions: a pick committed between them would make them disagree)."""
    store = open_store(path, readonly=readonly)
    try:
        if readonly:
            with store.snapshot():
                yield store
        else:
            yield store
    finally:
        store.close()


@dataclass(frozen=True, kw_only=True)
class RunSummary(Run):
    """A run as the runs list shows it: without its config and command, with its latest loss.

    A training run shows the best EER and epoch its validation picked.
    """

    #: the loss of a training run's latest step (None for other kinds)
    last_loss: float | None = None
    #: the network its config names (``network_name``): "" for a run without one
    network: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunSummary:
        """The summary of a ``Store.runs_changed_since`` row: its run as the store reads it
        (``run_of``), its latest loss, and its network from two JSON fields."""
        run = run_of(row)  # once: a refresh makes thousands of these
        fields = {name: getattr(run, name) for name in field_names(Run)}
        return cls(**fields, last_loss=row.get("last_loss"),
                   network=network_name(row.get("architecture"), row.get("front_end")))


def _with_derived(runs: list[RunSummary]) -> list[RunSummary]:
    """The rows a runs list shows: a training run takes its validation's best EER and epoch."""
    best = newest_picks(runs)
    out = []
    for run in runs:
        val = best.get(run.id) if run.kind == "train" else None
        if val is not None:
            run = dataclasses.replace(run, best_eer=val.best_eer, best_epoch=val.best_epoch,
                                      best_checkpoint=val.best_checkpoint)
        out.append(run)
    return out


def read_runs(path: Path, newest: int | None = None) -> list[RunSummary]:
    """Every run with its last loss and best EER (a training run takes its validation's best);
    ``newest``: only that many, the newest (a training run then takes the best of those)."""
    with store_at(path) as store:
        rows, _, _ = store.runs_changed_since(0, newest=newest)
    return _with_derived([RunSummary.from_row(r) for r in rows])


class RunsFeed:
    """Every run of one database, kept up to date by reading only the runs changed since the
    last read (``runs.changed``, bumped by triggers on every write).

    A refresh of a workspace of a thousand runs of which ten are training reads ten rows (and
    makes records of those ten only). The whole table is read again when the file no longer
    matches what was seen: another file at the path, fewer runs than known (rows deleted) or a
    change counter gone backwards. Safe to call from several worker threads: reads are serialised.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._runs: dict[int, RunSummary] = {}
        self._changed = 0
        self._file: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def read(self) -> list[RunSummary]:
        """Every run, newest first, as ``read_runs`` gives them."""
        with self._lock, store_at(self.path) as store:
            stat = os.stat(self.path)
            if (stat.st_dev, stat.st_ino) != self._file:
                self._file, self._runs, self._changed = (stat.st_dev, stat.st_ino), {}, 0
            rows, newest, count = store.runs_changed_since(self._changed)
            if newest < self._changed or len(self._runs.keys() | {int(r["id"]) for r in rows}) != count:
                self._runs = {}
                rows, newest, count = store.runs_changed_since(0)
            for row in rows:
                run = RunSummary.from_row(row)
                self._runs[run.id] = run
            self._changed = newest
            runs = [self._runs[k] for k in sorted(self._runs, reverse=True)]
        return _with_derived(runs)


#: a ``train_steps`` row (step, epoch, loss, lr, margin, chunks_per_s, time): steps stay plain rows,
#: being many (a long run has a million) and read by the plots a column at a time
StepRow = dict[str, Any]
#: steps a run detail reads at most at once: a longer run is read as this many evenly spaced
#: steps (its plot draws fewer points than that; a million rows would take seconds to read)
STEP_POINTS = 2000


def thin_steps(steps: list[StepRow]) -> list[StepRow]:
    """The steps a screen holds of a live run: once they pass twice ``STEP_POINTS`` (each refresh adds
    the new ones), about ``STEP_POINTS`` evenly spaced ones again, as the first read takes them, the
    first and last kept. Thinned at twice, not at once, so the points drawn do not move every refresh."""
    if len(steps) <= 2 * STEP_POINTS:
        return steps
    low, high = steps[0]["step"], steps[-1]["step"]
    gap, mark, kept = (high - low) / STEP_POINTS, low, []
    for row in steps:
        if row["step"] >= mark:  # the first step at or after each of the evenly spaced marks
            kept.append(row)
            mark = low + gap * ((row["step"] - low) // gap + 1)
    return kept if kept[-1] is steps[-1] else [*kept, steps[-1]]


@dataclass(frozen=True, kw_only=True)
class RunDetail:
    """One run and everything recorded about it, as the run detail screen shows it."""

    run: Run
    #: the training run it belongs to (itself, for a training run)
    train: Run
    #: the network ``train``'s config names (``network_name``; "" when it names none)
    network: str
    #: the run a fork started from (``train --init-from``), when the database holds it
    init_parent: Run | None
    #: steps of ``train`` after the step asked for
    steps: list[StepRow]
    epochs: list[EpochSummary]
    checkpoints: list[Checkpoint]
    #: validations of ``train``'s checkpoints, by every validate run of it
    validations: list[RecordedValidation]
    #: the validate runs of ``train``, newest first
    validators: list[Run]
    #: the apply runs of ``train`` (newest first), then those of its validate runs
    applies: list[Run]
    #: the extraction each finished apply run recorded (its mode, step, …), by the run's id
    extractions: dict[int, Extraction]
    #: the diarization checks of each apply run, by its id: the latest of each setting (subset,
    #: collar, overlap, number of speakers), newest first
    der: dict[int, list[DiarizationCheck]]
    #: the stale extraction of each apply run whose checkpoint is no longer the one picked, by its id
    stale: dict[int, StaleExtraction]
    problems: list[DataProblem]
    #: the seeds of the training run's group, averaged (None: the run has no group)
    group: GroupSummary | None = None
    #: the EER of each seed of that group per epoch (its band on the EER plot)
    group_epochs: tuple[GroupEpoch, ...] = ()

    @property
    def shown_validations(self) -> list[RecordedValidation]:
        """What the epoch table, the EER plot and the summary show: the validations of one VAL_DIR, the
        one its header names (the newest validate run that points at an epoch, else the newest), the
        newest of a checkpoint scored twice. All of them mixed epochs of two trial lists, and gave an
        averaged checkpoint one line per validate run that scored it."""
        shown = next((v for v in self.validators if v.best_eer is not None), None) or \
            next(iter(self.validators), None)
        if shown is None or shown.out_dir is None:
            return self.validations
        ids = {v.id for v in self.validators if v.out_dir == shown.out_dir}
        newest = {v.checkpoint: v for v in sorted(self.validations, key=lambda v: v.run_id) if v.run_id in ids}
        return [v for v in self.validations if newest.get(v.checkpoint) is v]


def _training_run(store: Any, run: Run) -> Run:
    """The training run that ``run`` belongs to: itself, its parent, or its grandparent (apply)."""
    if run.kind == "train" or run.parent_id is None:
        return run
    parent = store.run_record(run.parent_id)
    if parent is not None and parent.kind == "train":
        return parent
    if parent is not None and parent.parent_id is not None:
        grand = store.run_record(parent.parent_id)
        if grand is not None and grand.kind == "train":
            return grand
    return run


def read_detail(path: Path, run_id: int, since_step: int) -> RunDetail | None:
    """One run and everything recorded about it, for the run detail screen (None: no such run).

    For a training run: its steps after ``since_step``, epochs, checkpoints, the
    validations of its checkpoints and the validate/apply runs that hang off it.
    """
    with store_at(path) as store:
        run = store.run_record(run_id)
        if run is None:
            return None
        train = _training_run(store, run)
        children = store.child_records(train.id)
        grandchildren = sorted((r for c in children for r in store.child_records(c.id)),
                               key=lambda r: r.id, reverse=True)
        # a fork's parent (train --init-from), for its lineage and config diff
        parent = store.run_record(train.init_run_id) if train.init_run_id is not None else None
        applies = [r for r in children + grandchildren if r.kind == "apply"]
        validators = [r for r in children if r.kind == "validate"]
        extractions, der, stale = extraction_checks(store, [a.id for a in applies])
        problems = store.problem_records(train.id) + [p for v in children for p in store.problem_records(v.id)]
        group = store.group_summary(train.run_group) if train.run_group else None
        return RunDetail(
            run=run, train=train, network=config_network(train.config or run.config),
            init_parent=parent, steps=store.steps(train.id, since_step=since_step, at_most=STEP_POINTS),
            epochs=store.epoch_records(train.id), checkpoints=store.checkpoint_records(train.id),
            validations=store.validation_records(train_run_id=train.id),
            validators=validators, applies=applies, extractions=extractions, der=der, stale=stale,
            problems=problems,
            group=group, group_epochs=tuple(store.group_epochs(group.group, group.trials)) if group else ())


def extraction_checks(store: Any, apply_ids: list[int]) -> tuple[
        dict[int, Extraction], dict[int, list[DiarizationCheck]], dict[int, StaleExtraction]]:
    """For these apply runs, by apply run id: the extraction each recorded, its diarization checks
    (the latest of each setting: another collar is another line, not a replacement), and the stale
    ones (with the epoch params.yml points at now)."""
    wanted = set(apply_ids)
    extractions, der = {}, {}
    for run_id in apply_ids:
        recorded = store.extraction_records(run_id)
        if recorded:
            extractions[run_id] = recorded[-1]
        latest: dict[tuple, DiarizationCheck] = {}
        for check in store.diarization_records(run_id=run_id):  # newest first
            latest.setdefault(check.setting, check)
        if latest:
            der[run_id] = list(latest.values())
    stale = {s.apply_run_id: s for s in store.stale_extraction_records() if s.apply_run_id in wanted}
    return extractions, der, stale


@dataclass(frozen=True, kw_only=True)
class RunCurves:
    """What the compare screen shows of one run: its curves, validate runs and config."""

    run: Run
    #: steps after the step asked for (none for a validate run)
    steps: list[StepRow]
    validations: list[RecordedValidation]
    #: the validate runs that scored ``validations`` (the run itself, for a validate run)
    validators: list[Run]
    config: dict[str, Any]
    #: the network the config names (``network_name``; "" when it names none)
    network: str = ""
    #: the EER of each seed of the run's group per epoch (its band), for a training run of a group
    group_epochs: tuple[GroupEpoch, ...] = ()


def _config(run: Run) -> dict[str, Any]:
    """A run's config as a dict (empty when it has none, or an unreadable one)."""
    config: Any = run.config
    if isinstance(config, str):  # written as JSON text twice by hand: still shown
        try:
            config = json.loads(config)
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            config = {}
    return config if isinstance(config, dict) else {}


def read_curves(path: Path, run_ids: list[int], since: dict[int, int] | None = None) -> list[RunCurves]:
    """Steps (after ``since[run_id]``, default all; ``STEP_POINTS`` evenly spaced ones of more), validations
    and config of several runs, for the compare screen."""
    since = since or {}
    out = []
    with store_at(path) as store:
        for run_id in run_ids:
            run = store.run_record(run_id)
            if run is None:
                continue
            train = run.kind == "train"
            # a training run's own children: a lab's database holds thousands of validate runs
            validators = ([r for r in store.child_records(run_id) if r.kind == "validate"] if train
                          else [run] if run.kind == "validate" else [])
            recorded = store.validation_records(train_run_id=run_id) if train else store.validation_records(run_id)
            steps = store.steps(run_id, since_step=since.get(run_id, -1), at_most=STEP_POINTS) if train else []
            out.append(RunCurves(run=run, steps=steps,
                                 validations=recorded,
                                 validators=validators, config=(config := _config(run)),
                                 network=config_network(config),
                                 group_epochs=tuple(store.group_epochs(run.run_group))
                                 if train and run.run_group else ()))
    return out


def run_query(path: Path, sql: str, *, limit: int | None, time_limit: float | None,
              stop: QueryStop | None = None) -> QueryResult:
    """A read-only SQL query (the store runs it on a read-only connection of its own)."""
    with store_at(path) as store:
        result = store.query(sql, limit=limit, time_limit=time_limit, stop=stop)
        return QueryResult(list(result.columns), [tuple(r) for r in result.rows], result.truncated)


def used_by_runs(path: Path, exp_dir: Path) -> list[int]:
    """Ids of runs that used the config of ``exp_dir``."""
    if not path.exists():
        return []
    target = exp_dir.resolve()
    with store_at(path) as store:
        folders = store.experiment_folders()
    return sorted((run_id for exp, ids in folders.items() if Path(exp).resolve() == target for run_id in ids),
                  reverse=True)
