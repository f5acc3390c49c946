"""The ``spkemb-engine`` command lines the TUI runs, built from the engine's typed requests.

Every command is an argument list run with the same interpreter (``python -m engine``);
``app.launching.children`` starts and stops them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from engine.layout import ExperimentDir, TrainingDir
from engine.records import Run, RunDevice


def trn_dir(exp_dir: str | Path, protocol: str, subset: str) -> Path:
    """TRN_DIR = EXP_DIR/train/PROTOCOL.SUBSET (docs/directories.md)."""
    return ExperimentDir(Path(exp_dir)).training(protocol, subset).root


def val_dir(trn: str | Path, protocol: str, subset: str) -> Path:
    """VAL_DIR = TRN_DIR/validate_equal_error_rate/PROTOCOL.SUBSET."""
    return TrainingDir(Path(trn)).validation(protocol, subset).root


def _common(db: str | Path | None, database: str | Path | None) -> list[str]:
    args = []
    if db:
        args += ["--db", str(db)]
    if database:
        args += ["--database", str(database)]
    return args


def engine_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def train_argv(exp_dir: str | Path, protocol: str, *, subset: str = "train", to: int | None = None,
               device: str | None = None, parallel: int | None = None, resume: bool = False,
               db: str | Path | None = None, database: str | Path | None = None,
               init_from: str | Path | None = None, init_classifier: bool = False) -> list[str]:
    args = ["train", "--subset", subset]
    if init_from is not None:  # a fork: start from another run's checkpoint
        args += ["--init-from", str(init_from)] + (["--init-classifier"] if init_classifier else [])
    if to is not None:
        args += ["--to", str(to)]
    if device:
        args += ["--device", device]
    if parallel is not None:
        args += ["--parallel", str(parallel)]
    if resume:
        args.append("--resume")
    return engine_argv(*args, *_common(db, database), str(exp_dir), protocol)


def recorded_option(command: list[str] | None, flag: str) -> str | None:
    """The value of ``flag`` (``--parallel 4`` or ``--parallel=4``) in a run's recorded command line."""
    command = command or []
    value = None
    for i, word in enumerate(command):
        if word == flag and i + 1 < len(command):
            value = command[i + 1]
        elif word.startswith(flag + "="):
            value = word[len(flag) + 1:]
    return value


def resume_argv(train: Run, *, db: str | Path | None = None, database: str | Path | None = None) -> list[str]:
    """The command that resumes training run ``train`` as it ran: its data-loading workers
    (``--parallel``) and, for a run under torchrun (device ``cuda:0 x4``), torchrun again with as
    many processes, each given the device kind (``cuda``) so that each takes its local rank's GPU."""
    recorded = RunDevice.parse(train.device) if train.device else RunDevice("")
    parallel = recorded_option(train.command, "--parallel")
    argv = train_argv(train.exp_dir or "", train.protocol or "", subset=train.subset or "train",
                      to=train.target_epoch, resume=True, db=db, database=database,
                      device=recorded.kind if recorded.processes > 1 else recorded.device or None,
                      parallel=int(parallel) if parallel is not None and parallel.isdigit() else None)
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
                  score_norm: ScoreNorm | None = None) -> list[str]:
    args = ["validate", "--subset", subset, "--every", str(every)]
    if to is not None:
        args += ["--to", str(to)]
    if device:
        args += ["--device", device]
    if score_norm is not None:
        args += ["--score-norm", "asnorm", "--cohort-size", str(score_norm.cohort_size),
                 "--cohort-files", str(score_norm.cohort_files)]
    return engine_argv(*args, *_common(db, database), str(trn), protocol)


@dataclass(frozen=True)
class ValidationChoice:
    """What a validation is asked for: the trial subset, how often, and AS-norm or raw scores."""

    subset: str = "development"
    every: int = 1
    score_norm: ScoreNorm | None = None


def validation_settings(validator: Run | None) -> ValidationChoice:
    """The settings of a validate run's command line; the Launch screen's defaults without one."""
    from engine.arguments import build_parser

    if validator is None or not validator.command:
        return ValidationChoice()
    try:  # the engine's own parser reads its own command line (sys.argv: the program, then the command)
        args = build_parser().parse_args(list(validator.command)[1:])
    except SystemExit:  # a command line the parser no longer reads: the defaults
        return ValidationChoice()
    norm = ScoreNorm(args.cohort_size, args.cohort_files) if args.score_norm else None
    return ValidationChoice(args.subset, args.every, norm)


def pick_argv(val: str | Path, *, epoch: int | str | None = None, db: str | Path | None = None) -> list[str]:
    args = ["pick"]
    if epoch is not None:
        args += ["--epoch", str(epoch)]
    return engine_argv(*args, *_common(db, None), str(val))


@dataclass(frozen=True)
class DiarizationSettings:
    """How the diarization check scores an extraction (``--collar``, ``--skip-overlap``, ``--num-speakers``)."""

    collar: float = 0.0
    skip_overlap: bool = False
    num_speakers: str = "oracle"

    def argv(self) -> list[str]:
        return (["--collar", str(self.collar)] + (["--skip-overlap"] if self.skip_overlap else [])
                + ["--num-speakers", self.num_speakers])


def apply_argv(val: str | Path, protocol: str, *, subset: str = "test", step: float = 0.1,
               epoch: int | None = None, device: str | None = None, path: str = "exact",
               db: str | Path | None = None, database: str | Path | None = None,
               diarize: bool = False, diarization: DiarizationSettings | None = None) -> list[str]:
    """``spkemb-engine apply`` of VAL_DIR; ``path``: exact, shared (``--shared``) or onnxruntime
    (``--runtime onnxruntime``, the checkpoint exported on the fly)."""
    args = ["apply", "--subset", subset, "--step", str(step)]
    if epoch is not None:
        args += ["--epoch", str(epoch)]
    args += {"exact": [], "shared": ["--shared"], "onnxruntime": ["--runtime", "onnxruntime"]}[path]
    if diarize:
        args.append("--diarize")
        args += (diarization or DiarizationSettings()).argv()
    if device:
        args += ["--device", device]
    return engine_argv(*args, *_common(db, database), str(val), protocol)


def average_argv(folder: str | Path, *, last: int | None = None, top: int | None = None,
                 db: str | Path | None = None) -> list[str]:
    """``spkemb-engine average --last N TRN_DIR`` or ``--top K VAL_DIR``."""
    how = ["--last", str(last)] if last is not None else ["--top", str(top)]
    return engine_argv("average", *how, *_common(db, None), str(folder))
