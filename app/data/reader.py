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

from engine.config.specs import FBANK_BACKBONES
from engine.records import (
    Checkpoint,
    DataProblem,
    DiarizationCheck,
    EpochSummary,
    Extraction,
    RecordedValidation,
    Run,
    StaleExtraction,
    row_record,
)
from engine.records.labels import GroupSummary
from engine.store import QueryResult, QueryStop, open_store


@contextmanager
def store_at(path: Path, readonly: bool = True) -> Iterator[Any]:
    store = open_store(path, readonly=readonly)
    try:
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
        """The summary of a ``Store.runs_changed_since`` row (its network from two JSON fields)."""
        run = super().from_row(row)  # decodes the tags as Run does
        return dataclasses.replace(run, network=network_name(row.get("architecture"), row.get("front_end")))


def network_name(architecture: Any, front_end: Any) -> str:
    """A short name of the network a config trains: its architecture (``SincTDNN``, ``ResNet34``),
    with ``+Fbank``/``+RawAudio`` only where the front end is not the backbone's own ("" for no
    architecture). Full ``pyannote.audio.models.SincTDNN`` names are shortened."""
    if not isinstance(architecture, str) or not architecture:
        return ""
    name = architecture.rsplit(".", 1)[-1]
    front = front_end.rsplit(".", 1)[-1] if isinstance(front_end, str) and front_end else "RawAudio"
    own = "Fbank" if name in FBANK_BACKBONES else "RawAudio"
    return name if front == own else f"{name}+{front}"


def config_network(config: Mapping[str, Any] | None) -> str:
    """``network_name`` of a decoded config (a run's ``config`` column)."""
    if not isinstance(config, Mapping):
        return ""

    def name(section: str) -> Any:
        value = config.get(section)
        return value.get("name") if isinstance(value, Mapping) else None

    return network_name(name("architecture"), name("feature_extraction"))


def _best_by_train_run(runs: list[RunSummary]) -> dict[int, RunSummary]:
    """The validate run with the best EER for each training run it validates."""
    best: dict[int, RunSummary] = {}
    for r in runs:
        parent = r.parent_id
        if r.kind == "validate" and parent is not None and r.best_eer is not None:
            if parent not in best or r.best_eer < best[parent].best_eer:  # type: ignore[operator]
                best[parent] = r
    return best


def _with_derived(runs: list[RunSummary]) -> list[RunSummary]:
    """The rows a runs list shows: a training run takes its validation's best EER and epoch."""
    best = _best_by_train_run(runs)
    out = []
    for run in runs:
        val = best.get(run.id) if run.kind == "train" else None
        if val is not None:
            run = dataclasses.replace(run, best_eer=val.best_eer, best_epoch=val.best_epoch,
                                      best_checkpoint=val.best_checkpoint)
        out.append(run)
    return out


def read_runs(path: Path) -> list[RunSummary]:
    """Every run with its last loss and best EER (a training run takes its validation's best)."""
    with store_at(path) as store:
        rows, _, _ = store.runs_changed_since(0)
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


def _training_run(store: Any, run: Run) -> Run:
    """The training run that ``run`` belongs to: itself, its parent, or its grandparent (apply)."""
    if run.kind == "train" or run.parent_id is None:
        return run
    parent = store.run(run.parent_id)
    if parent is not None and parent["kind"] == "train":
        return Run.from_row(parent)
    if parent is not None and parent["parent_id"] is not None:
        grand = store.run(int(parent["parent_id"]))
        if grand is not None and grand["kind"] == "train":
            return Run.from_row(grand)
    return run


def read_detail(path: Path, run_id: int, since_step: int) -> RunDetail | None:
    """One run and everything recorded about it, for the run detail screen (None: no such run).

    For a training run: its steps after ``since_step``, epochs, checkpoints, the
    validations of its checkpoints and the validate/apply runs that hang off it.
    """
    with store_at(path) as store:
        row = store.run(run_id)
        if row is None:
            return None
        run = Run.from_row(row)
        train = _training_run(store, run)
        all_runs = store.runs()
        children = [Run.from_row(r) for r in all_runs if r["parent_id"] == train.id]
        child_ids = {c.id for c in children}
        grandchildren = [Run.from_row(r) for r in all_runs if r["parent_id"] in child_ids]
        # a fork's parent (train --init-from), for its lineage and config diff
        parent = store.run(train.init_run_id) if train.init_run_id is not None else None
        applies = [r for r in children + grandchildren if r.kind == "apply"]
        validators = [r for r in children if r.kind == "validate"]
        extractions, der, stale = extraction_checks(store, [a.id for a in applies])
        problems = store.problems(train.id) + [p for v in children for p in store.problems(v.id)]
        return RunDetail(
            run=run, train=train, network=config_network(train.config or run.config),
            init_parent=None if parent is None else Run.from_row(parent),
            steps=store.steps(train.id, since_step=since_step),
            epochs=[EpochSummary.from_row(r) for r in store.epochs(train.id)],
            checkpoints=[Checkpoint.from_row(r) for r in store.checkpoints(train.id)],
            validations=[RecordedValidation.from_row(r) for r in store.validations(train_run_id=train.id)],
            validators=validators, applies=applies, extractions=extractions, der=der, stale=stale,
            problems=[DataProblem.from_row(p) for p in problems],
            group=store.group_summary(train.run_group) if train.run_group else None)


def extraction_checks(store: Any, apply_ids: list[int]) -> tuple[
        dict[int, Extraction], dict[int, list[DiarizationCheck]], dict[int, StaleExtraction]]:
    """For these apply runs, by apply run id: the extraction each recorded, its diarization checks
    (the latest of each setting: another collar is another line, not a replacement), and the stale
    ones (with the epoch params.yml points at now)."""
    wanted = set(apply_ids)
    extractions, der = {}, {}
    for run_id in apply_ids:
        rows = store.extractions(run_id)
        if rows:
            extractions[run_id] = row_record(Extraction, rows[-1])
        latest: dict[tuple, DiarizationCheck] = {}
        for row in store.diarizations(run_id=run_id):  # newest first
            check = row_record(DiarizationCheck, row)
            latest.setdefault(check.setting, check)
        if latest:
            der[run_id] = list(latest.values())
    stale = {int(r["apply_run_id"]): row_record(StaleExtraction, r)
             for r in store.stale_extractions() if r["apply_run_id"] in wanted}
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


def _config(run: Run) -> dict[str, Any]:
    """A run's config as a dict (empty when it has none, or an unreadable one)."""
    config: Any = run.config
    if isinstance(config, str):  # written as JSON text twice by hand: still shown
        try:
            config = json.loads(config)
        except ValueError:
            config = {}
    return config if isinstance(config, dict) else {}


def read_curves(path: Path, run_ids: list[int], since: dict[int, int] | None = None) -> list[RunCurves]:
    """Steps (after ``since[run_id]``, default all), validations and config of several runs, for
    the compare screen."""
    since = since or {}
    out = []
    with store_at(path) as store:
        validate_runs: list[Run] | None = None  # read once, when a training run needs its validators
        for run_id in run_ids:
            row = store.run(run_id)
            if row is None:
                continue
            run = Run.from_row(row)
            train = run.kind == "train"
            if train and validate_runs is None:
                validate_runs = [Run.from_row(r) for r in store.runs(kind="validate")]
            validators = ([r for r in validate_runs or [] if r.parent_id == run_id] if train
                          else [run] if run.kind == "validate" else [])
            rows = store.validations(train_run_id=run_id) if train else store.validations(run_id)
            out.append(RunCurves(run=run, steps=store.steps(run_id, since_step=since.get(run_id, -1)) if train else [],
                                 validations=[RecordedValidation.from_row(r) for r in rows],
                                 validators=validators, config=(config := _config(run)),
                                 network=config_network(config)))
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
        return [int(r["id"]) for r in store.runs()
                if r["exp_dir"] and Path(r["exp_dir"]).resolve() == target]
