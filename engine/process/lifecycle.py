"""A run's beginning: one :func:`open_run` for every command that records a run (train, validate, apply).

A run is recorded in the runs database, or in its folder's event file where the database cannot
work (``engine.store.events.open_writer``). What each kind records of itself follows from its
run folder (``engine.layout``) and its request: where it writes, the experiment, the run it hangs
off (a validate run off TRN_DIR's training run, an apply run off VAL_DIR's validate run), and for
training its labels and lineage. The returned :class:`Recorder` carries the run to its end
(``Recorder.ended``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal, Protocol

from engine.errors import StoreError
from engine.layout import ExtractionDir, TrainingDir, ValidationDir, checkpoint_file
from engine.process.distributed import World
from engine.process.recording import Recorder
from engine.records import Run
from engine.requests import TrainOptions
from engine.store import Store, default_db_path, is_network_fs, open_store
from engine.store.events import open_writer
from engine.store.sweeps import CLAIM_VAR
from engine.store.writer import NullWriter

RunKind = Literal["train", "validate", "apply"]
RunFolder = TrainingDir | ValidationDir | ExtractionDir


class RunRequest(Protocol):
    """What a recording command's request says of the run: its database and what it works on."""

    @property
    def db(self) -> str | None: ...
    @property
    def protocol(self) -> str: ...
    @property
    def subset(self) -> str: ...


class ForkPoint(Protocol):
    """The checkpoint a forked training run starts from (``engine.training.init_from.InitFrom``)."""

    @property
    def path(self) -> Path: ...
    @property
    def epoch(self) -> int | None: ...
    @property
    def sha256(self) -> str: ...


def open_run(kind: RunKind, folder: RunFolder, request: RunRequest, *, device: str, target_epoch: int | None,
             config: dict[str, Any] | None = None, status: str = "running", resume_from: int | None = None,
             fork: ForkPoint | None = None, world: World | None = None) -> Recorder:
    """The run of ``kind`` writing to ``folder``, recorded, and the recorder that carries it.

    Parameters
    ----------
    device
        Where it computes, as the ``device`` column says it (``cuda:0 x4``).
    target_epoch
        The epoch training goes up to; for validate the last epoch to score (``--to``); for
        apply the epoch of the weights it applies.
    config
        A training run's resolved config; a validate run records its training run's, an apply run none.
    status
        ``indexing`` for a training run that lists its data before its first step.
    resume_from
        The step a resumed training run continues from: its run (the newest of TRN_DIR) is
        reopened from there, its later steps dropped, instead of recording a new one. An event
        file cannot look back: there a resumed run is a new run.
    fork
        The checkpoint a new training run starts from, recorded as its lineage.
    world
        A distributed training run's processes: only rank 0 records; the others get a recorder
        that drops everything.
    """
    if world is not None and not world.is_main:
        return Recorder(NullWriter(), -1, kind=kind, quiet=True)
    events = request.events if isinstance(request, TrainOptions) else False
    db = default_db_path(request.db)
    created = not db.exists()
    writer = open_writer(request.db, events_path=_events(folder), events=events)
    store = writer if isinstance(writer, Store) else None
    parent = _parent(store, kind, folder)
    fields: dict[str, Any] = dict(command=list(sys.argv), device=device, target_epoch=target_epoch)
    previous = store.newest_run(out_dir=folder.root.resolve(), kind=kind) \
        if store is not None and resume_from is not None else None
    if store is not None and previous is not None:
        if isinstance(request, TrainOptions) and (request.group or request.tag or request.note):
            # given again with --resume: they change the run's
            store.set_labels(previous.id, run_group=request.group, add_tags=list(request.tag or []),
                             note=request.note)
        store.reopen_run(previous.id, from_step=resume_from, status=status, **fields)
        return _said(Recorder(writer, previous.id, kind=kind, store=store, parent=parent, target=target_epoch,
                              indexing=status == "indexing"), db, created=False)
    claim = os.environ.get(CLAIM_VAR) if kind == "train" else None
    if claim:  # started by the queue (``spkemb-engine queue``): its queued run is this one
        if store is None:
            raise StoreError("the queue started this run, but it writes an event file (--events, or a database on a "
                             "network filesystem): queued runs need the database on a local disk; use sweep --sbatch")
        run_id = store.adopt_queued(claim, command=fields["command"], device=device, target_epoch=target_epoch,
                                    config=config, status=status, log_path=_log(folder))
        return _said(Recorder(writer, run_id, kind=kind, store=store, parent=parent, target=target_epoch,
                              indexing=status == "indexing"), db, created=False)
    if kind == "validate" and parent is not None:
        config = parent.config
    experiment = _experiment(folder)
    lineage = _lineage(store, fork) if fork is not None else {}
    run_id = writer.create_run(
        kind=kind, exp_dir=experiment, out_dir=folder.root.resolve() if kind == "train" else folder.root,
        protocol=request.protocol, subset=request.subset, config=config,
        parent_id=parent.id if parent is not None else None, name=_name(kind, experiment, request),
        log_path=_log(folder), status=status, **fields, **lineage,
        **(_labels(request) if isinstance(request, TrainOptions) else {}))
    return _said(Recorder(writer, run_id, kind=kind, store=store, parent=parent, target=target_epoch,
                          indexing=status == "indexing"), db, created=created)


def _said(recorder: Recorder, db: Path, *, created: bool) -> Recorder:
    """``recorder``, once it has said where its run is recorded when that may surprise: a database
    made now (a command run from another folder than usual), or an event file. Every run's last
    line says where it was recorded (``Recorder.ended``)."""
    if recorder.store is None:
        recorder.say(f"{recorder.kind}: run recorded in the event file {recorder.recorded_in()} "
                     "(`spkemb-engine import` brings it into a runs database)")
    elif created:
        recorder.say(f"{recorder.kind}: run #{recorder.run_id} recorded in {db}, a new runs database (runs "
                     "recorded elsewhere are not in it: --db FILE or SPKEMB_DB names another)")
    return recorder


def find_parent(kind: RunKind, folder: RunFolder, db: str | None) -> Run | None:
    """The run a run of ``kind`` in ``folder`` would hang off (:func:`open_run` records it), read
    before anything is recorded; None without a database that holds it."""
    path = default_db_path(db)
    if kind == "train" or not path.is_file() or is_network_fs(path):
        return None
    with open_store(path, readonly=True) as store:
        return _parent(store, kind, folder)


def _parent(store: Store | None, kind: RunKind, folder: RunFolder) -> Run | None:
    if store is None or isinstance(folder, TrainingDir):
        return None
    if isinstance(folder, ValidationDir):
        return store.newest_run(out_dir=folder.training.root, kind="train")
    return store.newest_run(out_dir=folder.validation.root, kind="validate")


def _events(folder: RunFolder) -> Path:
    """The event file of a run of ``folder`` (an extraction's is its VAL_DIR's ``apply/`` one)."""
    return folder.validation.apply_events if isinstance(folder, ExtractionDir) else folder.events


def _experiment(folder: RunFolder) -> Path:
    """EXP_DIR of a run folder, resolved (a TRN_DIR given as ``.`` has parents too)."""
    training = folder if isinstance(folder, TrainingDir) else folder.training if isinstance(
        folder, ValidationDir) else folder.validation.training
    return TrainingDir(training.root.resolve()).experiment.root


def _log(folder: RunFolder) -> Path | None:
    """The training log, when the command's output goes there (the TUI starts it so)."""
    return folder.log if isinstance(folder, TrainingDir) and folder.log.exists() else None


def _name(kind: RunKind, experiment: Path, request: RunRequest) -> str:
    if kind == "train":
        return experiment.name
    if kind == "validate":
        return f"{experiment.name} validate"
    return f"apply {request.protocol}.{request.subset}"


def _labels(request: TrainOptions) -> dict[str, Any]:
    """How a training run is compared: ``--seed``, ``--group``, ``--tag``, ``--note``."""
    return dict(seed=request.seed, run_group=request.group, tags=list(request.tag or []), note=request.note)


def _lineage(store: Store | None, fork: ForkPoint) -> dict[str, Any]:
    """What a fork records of its parent: checkpoint path, epoch, sha256, and the run that wrote it
    when the database knows it (an event file cannot look)."""
    found = checkpoint_file(fork.path)
    parent = store.newest_run(out_dir=found[0].root.resolve(), kind="train") \
        if store is not None and found is not None else None
    return {"init_from": str(fork.path), "init_epoch": fork.epoch, "init_sha256": fork.sha256,
            "init_run_id": parent.id if parent is not None else None}
