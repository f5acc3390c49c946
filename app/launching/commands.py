"""The ``spkemb-engine`` command lines the TUI runs, built from the engine's typed requests.

Every command is an argument list run with the same interpreter (``python -m engine``);
``app.launching.children`` starts and stops them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.cli import parse_command, to_argv
from engine.layout import ExperimentDir, TrainingDir
from engine.records import Run, RunDevice
from engine.requests import (
    ApplyRequest,
    AverageRequest,
    CleanRequest,
    PickRequest,
    Request,
    TrainRequest,
    ValidateRequest,
    VerifyRequest,
)


def trn_dir(exp_dir: str | Path, protocol: str, subset: str) -> Path:
    """TRN_DIR = EXP_DIR/train/PROTOCOL.SUBSET (docs/directories.md)."""
    return ExperimentDir(Path(exp_dir)).training(protocol, subset).root


def val_dir(trn: str | Path, protocol: str, subset: str) -> Path:
    """VAL_DIR = TRN_DIR/validate_equal_error_rate/PROTOCOL.SUBSET."""
    return TrainingDir(Path(trn)).validation(protocol, subset).root


def _path(value: str | Path | None) -> str | None:
    """A request's path field: text, or None for an empty or missing one."""
    return str(value) if value else None


def engine_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def request_argv(request: Request) -> list[str]:
    """The command that runs ``request``: the engine's parser spells its options (``engine.cli.to_argv``)."""
    return engine_argv(*to_argv(request))


def train_argv(exp_dir: str | Path, protocol: str, *, subset: str = "train", to: int | None = None,
               device: str | None = None, parallel: int | None = None, resume: bool = False,
               db: str | Path | None = None, database: str | Path | None = None,
               init_from: str | Path | None = None, init_classifier: bool = False, seed: int | None = None,
               group: str | None = None, tags: tuple[str, ...] = (), note: str | None = None) -> list[str]:
    request = TrainRequest(
        exp_dir=str(exp_dir), protocol=protocol, subset=subset, to=to, device=device or None, resume=resume,
        db=_path(db), database=_path(database), init_from=None if init_from is None else str(init_from),
        init_classifier=init_from is not None and init_classifier, seed=seed, group=group or None,
        tag=tuple(tags) or None, note=note or None)
    if parallel is not None:  # None: the engine's default
        request = dataclasses.replace(request, parallel=parallel)
    return request_argv(request)


def recorded_request(run: Run) -> Request | None:
    """The request of a run's recorded command line (``sys.argv``: the program, then the command), read
    by the engine's own parser; None for one it no longer reads (its complaint is kept off the screen)."""
    if not run.command:
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return parse_command(list(run.command)[1:])[1]
    except SystemExit:
        return None


def resume_argv(train: Run, *, db: str | Path | None = None, database: str | Path | None = None) -> list[str]:
    """The command that resumes training run ``train`` as it ran: its data-loading workers
    (``--parallel``) and, for a run under torchrun (device ``cuda:0 x4``), torchrun again with as
    many processes, each given the device kind (``cuda``) so that each takes its local rank's GPU."""
    recorded = RunDevice.parse(train.device) if train.device else RunDevice("")
    request = recorded_request(train)
    parallel = request.parallel if isinstance(request, TrainRequest) else None
    argv = train_argv(train.exp_dir or "", train.protocol or "", subset=train.subset or "train",
                      to=train.target_epoch, resume=True, db=db, database=database,
                      device=recorded.kind if recorded.processes > 1 else recorded.device or None,
                      parallel=parallel)
    if recorded.processes == 1:
        return argv
    # argv is [python, -m, engine, ...]: torchrun takes the module the same way
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={recorded.processes}", *argv[1:]]


def run_device(run: Run) -> str | None:
    """The one device a single-process command (validate, apply) beside ``run`` is given."""
    return None if not run.device else RunDevice.parse(run.device).device


@dataclass(frozen=True)
class ScoreNorm:
    """AS-norm settings of a validation (``--score-norm asnorm --cohort-size N --cohort-files F``)."""

    cohort_size: int = 300
    cohort_files: int = 3


def validate_argv(trn: str | Path, protocol: str, *, subset: str = "test", every: int = 1,
                  to: int | None = None, device: str | None = None,
                  db: str | Path | None = None, database: str | Path | None = None,
                  score_norm: ScoreNorm | None = None, calibration: str | None = None) -> list[str]:
    request = ValidateRequest(trn_dir=str(trn), protocol=protocol, subset=subset, every=every, to=to,
                              device=device or None, db=_path(db), database=_path(database),
                              calibration=calibration or None)
    if score_norm is not None:
        request = dataclasses.replace(request, score_norm="asnorm", cohort_size=score_norm.cohort_size,
                                      cohort_files=score_norm.cohort_files)
    return request_argv(request)


@dataclass(frozen=True)
class ValidationChoice:
    """What a validation is asked for: the trial subset, how often, AS-norm or raw scores, and the
    subset whose trials calibrate the scores (None: no calibration)."""

    subset: str = "development"
    every: int = 1
    score_norm: ScoreNorm | None = None
    calibration: str | None = None


def validation_settings(validator: Run | None) -> ValidationChoice:
    """The settings of a validate run's command line; the Launch screen's defaults without one."""
    request = None if validator is None else recorded_request(validator)
    if not isinstance(request, ValidateRequest):
        return ValidationChoice()
    norm = ScoreNorm(request.cohort_size, request.cohort_files) if request.score_norm else None
    return ValidationChoice(request.subset, request.every, norm, request.calibration)


def pick_argv(val: str | Path, *, epoch: int | str | None = None, db: str | Path | None = None) -> list[str]:
    return request_argv(PickRequest(val_dir=str(val), epoch=epoch, db=_path(db)))


@dataclass(frozen=True)
class DiarizationSettings:
    """How the diarization check scores an extraction (``--collar``, ``--skip-overlap``, ``--num-speakers``)."""

    collar: float = 0.0
    skip_overlap: bool = False
    num_speakers: str = "oracle"


def apply_argv(val: str | Path, protocol: str, *, subset: str = "test", step: float = 0.1,
               epoch: int | None = None, device: str | None = None, path: str = "exact",
               db: str | Path | None = None, database: str | Path | None = None,
               diarize: bool = False, diarization: DiarizationSettings | None = None) -> list[str]:
    """``spkemb-engine apply`` of VAL_DIR; ``path``: exact, shared (``--shared``) or onnxruntime
    (``--runtime onnxruntime``, the checkpoint exported on the fly)."""
    runtime = {"exact": "torch", "shared": "torch", "onnxruntime": "onnxruntime"}[path]
    der = diarization if diarize and diarization is not None else DiarizationSettings()
    return request_argv(ApplyRequest(val_dir=str(val), protocol=protocol, subset=subset, step=step, epoch=epoch,
                                     device=device or None, db=_path(db), database=_path(database),
                                     diarize=diarize, shared=path == "shared", runtime=runtime,
                                     collar=der.collar, skip_overlap=der.skip_overlap,
                                     num_speakers=der.num_speakers))


def average_argv(folder: str | Path, *, last: int | None = None, top: int | None = None,
                 db: str | Path | None = None) -> list[str]:
    """``spkemb-engine average --last N TRN_DIR`` or ``--top K VAL_DIR``."""
    how = {"last": last} if last is not None else {"top": top}
    return request_argv(AverageRequest(dir=str(folder), db=_path(db), **how))


def clean_argv(dirs: list[str], *, keep_last: int = 10, keep_best: int = 10, skipped: bool = False,
               yes: bool = False, db: str | Path | None = None) -> list[str]:
    """``spkemb-engine clean [--keep-last N] [--keep-best K] [--skipped] [--yes] DIR...``: list (or delete)
    the epoch checkpoints no result needs of TRN_DIRs and EXP_DIRs."""
    return request_argv(CleanRequest(dirs=tuple(dirs), keep_last=keep_last, keep_best=keep_best, skipped=skipped,
                                     yes=yes, db=_path(db)))


def verify_argv(val_dir: str | Path, enrolment: str, tests: list[str], *, db: str | Path | None = None,
                score_norm: str | None = None) -> list[str]:
    """``spkemb-engine verify [--score-norm asnorm] VAL_DIR ENROLMENT TEST...``: the picked checkpoint's
    scores of recordings."""
    return request_argv(VerifyRequest(val_dir=str(val_dir), enrolment=enrolment, tests=tuple(tests), db=_path(db),
                                      score_norm=score_norm))
