"""Runs and what they produce, as the database holds them: a run, an extraction, a DER check, a data problem."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.records.fields import PathText


@dataclass(frozen=True, kw_only=True)
class Extraction:
    """One finished ``apply`` of a protocol subset, with the checkpoint it came from.

    ``checkpoint`` (path, sha256, name) is the file the embeddings came from; ``validate_run_id``
    the validate run whose params.yml chose it and ``chosen_by`` how (``params.yml``, ``--epoch``).
    """

    epoch: int
    protocol: str
    subset: str
    out_dir: PathText
    mode: str
    step: float
    duration: float
    files: int
    audio_seconds: float
    wall_seconds: float
    checkpoint: PathText | None = None
    checkpoint_sha256: str | None = None
    checkpoint_name: str | None = None
    validate_run_id: int | None = None
    chosen_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class Run:
    """A ``runs`` row: what a run is, where its process is, how far it got and what it picked.

    ``config`` and ``command`` are decoded from their JSON; times are Unix seconds. Reads that
    leave columns out (the runs list leaves out config and command) leave their fields None.
    """

    id: int
    kind: str
    status: str
    out_dir: str | None
    exp_dir: str | None = None
    name: str | None = None
    protocol: str | None = None
    subset: str | None = None
    config: dict[str, Any] | None = None
    command: list[str] | None = None
    epoch: int | None = None
    step: int | None = None
    target_epoch: int | None = None
    parent_id: int | None = None
    # the process, and how it ended
    host: str | None = None
    pid: int | None = None
    pid_start: float | None = None
    slurm_job_id: str | None = None
    device: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    heartbeat_at: float | None = None
    reason: str | None = None
    log_path: str | None = None
    # files done of the phase under way (apply, indexing)
    progress: float | None = None
    progress_total: float | None = None
    # what a validate run picked (``best_checkpoint``: averaged weights, by name)
    best_epoch: int | None = None
    best_eer: float | None = None
    best_how: str | None = None
    best_checkpoint: str | None = None
    # a fork (``train --init-from``): the checkpoint it started from, its epoch, run and sha256
    init_from: str | None = None
    init_epoch: int | None = None
    init_run_id: int | None = None
    init_sha256: str | None = None
    #: the database's change counter of this row (``runs.changed``), None for a run not read from it
    changed: int | None = None
    # how it is compared (engine.records.labels): ``train --seed/--group/--tag/--note``, ``tag``
    seed: int | None = None
    run_group: str | None = None
    tags: tuple[str, ...] = ()
    note: str | None = None
    #: what it ran with (``engine.version.software``): spkemb's version and git commit, Python, torch
    software: dict[str, str] | None = None


@dataclass(frozen=True)
class RunDevice:
    """A run's ``device`` column: where it computed, with how many processes.

    A plain run records its device (``cpu``, ``cuda:1``); a run under torchrun records rank 0's
    device and the number of processes, ``cuda:0 x4``. Whoever starts the run again (the TUI's
    resume) needs both back apart: ``cuda:0 x4`` is no device that ``--device`` takes.
    """

    device: str
    processes: int = 1

    def __str__(self) -> str:
        return self.device + (f" x{self.processes}" if self.processes > 1 else "")

    @classmethod
    def parse(cls, text: str) -> RunDevice:
        """``cuda:0 x4`` -> (``cuda:0``, 4); ``cpu`` -> (``cpu``, 1); anything else as one device."""
        device, _, count = text.strip().rpartition(" x")
        if device and count.isdigit() and int(count) >= 1:
            return cls(device.strip(), int(count))
        return cls(text.strip())

    @property
    def kind(self) -> str:
        """The device without its index (``cuda:0`` -> ``cuda``): what each process of a torchrun
        world is given, so that each takes the GPU of its local rank rather than all the same one."""
        return self.device.split(":", 1)[0]


@dataclass(frozen=True, kw_only=True)
class DiarizationCheck:
    """A diarization check of an extraction folder (a ``diarizations`` row, read by ``row_record``).

    ``der`` is a fraction, its parts seconds of ``total``; ``num_speakers`` is ``oracle`` or how
    the number was found, ``threshold`` the clustering threshold when it was not the oracle;
    ``collar`` and ``skip_overlap`` how it was scored.
    """

    der: float
    id: int | None = None
    out_dir: str | None = None
    run_id: int | None = None
    epoch: int | None = None
    protocol: str | None = None
    subset: str | None = None
    collar: float | None = None
    skip_overlap: bool | None = None
    num_speakers: str | None = None
    threshold: float | None = None
    missed: float | None = None
    false_alarm: float | None = None
    confusion: float | None = None
    total: float | None = None

    @property
    def setting(self) -> tuple[str | None, float, bool, str | None]:
        """What makes two checks of one extraction comparable: subset, collar, overlap, speakers."""
        return self.subset, float(self.collar or 0.0), bool(self.skip_overlap), self.num_speakers


@dataclass(frozen=True, kw_only=True)
class StaleExtraction:
    """An extraction whose epoch is no longer the one its VAL_DIR points at (a ``stale_extractions``
    row, read by ``row_record``)."""

    extraction_id: int
    apply_run_id: int
    extracted_epoch: int | None
    current_epoch: int | None
    protocol: str | None = None
    subset: str | None = None
    out_dir: str | None = None


@dataclass(frozen=True, kw_only=True)
class DataProblem:
    """A data file a run could not use, and why (a ``data_problems`` row)."""

    run_id: int
    path: str
    problem: str
    fatal: bool


R = TypeVar("R", bound=Run)


def newest_picks(runs: Iterable[R]) -> dict[int, R]:
    """For each training run (by id), its newest validate run that points at an epoch (``params.yml``):
    whose pick a runs list shows on the training run's line, as its run detail shows it. The lowest EER
    of all its validate runs was an older pick, or another list's."""
    picks: dict[int, R] = {}
    for run in runs:
        parent = run.parent_id
        if run.kind == "validate" and parent is not None and run.best_eer is not None:
            if parent not in picks or run.id > picks[parent].id:
                picks[parent] = run
    return picks


def clock_text(t: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Unix time ``t`` as local clock time (``fmt``); ``?`` for a time no clock shows (a row edited
    to 1e300 made every runs list fail), "" for none."""
    if t is None:
        return ""
    try:
        return time.strftime(fmt, time.localtime(t))
    except (OverflowError, OSError, ValueError):
        return "?"


def _whole(value: float | None) -> str:
    """A count as a whole number; ``?`` for one no process writes (a row edited to NaN or infinity)."""
    return str(int(value)) if value is not None and math.isfinite(value) else "?"


def progress_text(kind: str | None, status: str | None, epoch: int | None, target: int | None,
                  done: float | None, total: float | None) -> str:
    """The ``epoch`` column: a training run's epoch of its target; the files an extraction (or an index
    being built) has done; the checkpoints a validation has scored (its epoch is the last one scored,
    which, newest first, reads 0 at its end)."""
    if kind == "apply" or status == "indexing":
        return f"{_whole(done or 0)}/{_whole(total)} files" if total else ""
    if kind == "validate":  # its epoch is the last checkpoint scored, not a count: "/3" said nothing
        return f"{_whole(done)} scored" if done else ""
    if epoch is None and target is None:
        return ""
    # a queued run, or one that failed before its first epoch: none done yet (it read "/2")
    return f"{0 if epoch is None else epoch}/{'' if target is None else target}"
