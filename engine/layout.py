"""The run-folder layout (docs/directories.md): the one module that spells its paths.

::

    EXP_DIR/config.yml
    TRN_DIR = EXP_DIR/train/{PROTOCOL}.{subset}/
              weights/{epoch:04d}.pt  weights/resume.pt  weights/avg-last10.pt ...
              train.log  events.jsonl  .train.lock
    VAL_DIR = TRN_DIR/validate_equal_error_rate/{PROTOCOL}.{subset}/
              params.yml  scores/{epoch:04d}.txt  scores/{epoch:04d}.asnorm.txt  scores/method.yml
              validate.log  events.jsonl  .validate.lock  scores/{epoch:04d}.cohort.npz
    VAL_DIR/apply/{epoch}[-shared|-onnxruntime][-step{step}]/{uri}.npy  metadata.yml
              {uri}.rttm  rttm-{settings}/{uri}.rttm     (VAL_DIR/apply.log, VAL_DIR/apply/events.jsonl)

An extraction's folder: :func:`extraction_folder`; a diarization setting's RTTMs: :func:`diarization_folder`.
Value types that know their paths; the engine and the TUI both use them and nothing else builds these paths.
Torch-free, no I/O beyond listing a folder. A checkpoint is named by an epoch number (``7`` -> ``0007.pt``)
or, for weights made from several epochs, by a name (``avg-top5`` -> ``avg-top5.pt``): :data:`CheckpointName`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.safe_paths import contained_path

# Every string constant of this module is a name on disk: tests/test_architecture.py allows it nowhere else.
CONFIG = "config.yml"
TRAIN, WEIGHTS, RESUME = "train", "weights", "resume.pt"
CHECKPOINT_SUFFIX = ".pt"
# averaged weights: these, then the number of epochs (avg-last10, avg-top5)
AVERAGE_LAST, AVERAGE_TOP = "avg-last", "avg-top"
VALIDATE = "validate_equal_error_rate"
PARAMS, SCORES = "params.yml", "scores"
NORMALISED_SCORES_SUFFIX, METHOD, COHORT_SUFFIX = ".asnorm.txt", "method.yml", ".cohort.npz"
APPLY, METADATA = "apply", "metadata.yml"
EVENTS = "events.jsonl"
TRAIN_LOG, VALIDATE_LOG, APPLY_LOG = "train.log", "validate.log", "apply.log"
RTTM_FOLDER = "rttm"
# flock'd by the process training a TRN_DIR, validating a VAL_DIR: a second one is refused
TRAIN_LOCK, VALIDATE_LOCK = ".train.lock", ".validate.lock"
SWEEPS, SWEEP_SCRIPT, STUDY = "sweeps", "sweep.sbatch", "optuna.journal"

#: what apply's ``mode`` may be: the exact or shared torch path, or the exported network in onnxruntime
MODES = ("exact", "shared", "onnxruntime")
#: the defaults an extraction folder's name leaves out (``apply --step``, the exact torch path: a mode's name)
DEFAULT_STEP, DEFAULT_MODE = 0.1, MODES[0]

CheckpointName = int | str

_EPOCH_FILE = re.compile(r"^(\d{4,})" + re.escape(CHECKPOINT_SUFFIX) + "$")
_AVERAGED = rf"(?:{re.escape(AVERAGE_LAST)}|{re.escape(AVERAGE_TOP)})\d+"
_NAMED_FILE = re.compile(rf"^({_AVERAGED})" + re.escape(CHECKPOINT_SUFFIX) + "$")
NAMED_CHECKPOINT = re.compile(rf"^{_AVERAGED}$")
_EXTRACTION_FOLDER = re.compile(rf"^(\d+|{_AVERAGED})(?:-(?:{'|'.join(MODES[1:])}))?(?:-step[^/]+)?$")

#: how messages name a TRN_DIR, a VAL_DIR, an extraction folder, a checkpoint file
TRN_DIR_SHAPE = f"EXP_DIR/{TRAIN}/PROTOCOL.SUBSET"
VAL_DIR_SHAPE = f"TRN_DIR/{VALIDATE}/PROTOCOL.SUBSET"
EXTRACTION_DIR_SHAPE = f"VAL_DIR/{APPLY}/EPOCH"

# the event files of a workspace experiment, relative to EXP_DIR (the TUI imports them)
EVENT_GLOBS = (f"{TRAIN}/*/{EVENTS}", f"{TRAIN}/*/{VALIDATE}/*/{EVENTS}", f"{TRAIN}/*/{VALIDATE}/*/{APPLY}/{EVENTS}")


def checkpoint_label(name: CheckpointName) -> str:
    """The file stem of a checkpoint: ``7`` -> ``"0007"``, ``"avg-top5"`` -> ``"avg-top5"``."""
    if isinstance(name, int):
        return f"{name:04d}"
    if not NAMED_CHECKPOINT.match(name):
        raise ValueError(f"{name!r} is not a checkpoint name (an epoch number, avg-lastN or avg-topK)")
    return name


def parse_checkpoint_name(text: str) -> CheckpointName | None:
    """``"0007"``/``"7"`` -> ``7``, ``"avg-top5"`` -> ``"avg-top5"``, anything else -> None."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    return text if NAMED_CHECKPOINT.match(text) else None


def checkpoint_file(path: Path) -> tuple[TrainingDir, CheckpointName] | None:
    """The training dir and checkpoint name of ``TRN_DIR/weights/{0007,avg-top5}.pt``, else None."""
    path = Path(path)
    m = _EPOCH_FILE.match(path.name) or _NAMED_FILE.match(path.name)
    if m is None or path.parent.name != WEIGHTS:
        return None
    name = m.group(1)
    return TrainingDir(path.parent.parent), int(name) if name.isdigit() else name


def _run_folder(root: Path, protocol: str, subset: str) -> Path:
    """``root/{protocol}.{subset}``; a protocol or subset that would leave ``root`` raises PathError."""
    fix = "check PROTOCOL and --subset"
    contained_path(root, protocol, what=f"protocol {protocol!r}", fix=fix)
    contained_path(root, subset, what=f"subset {subset!r}", fix=fix)
    return contained_path(root, f"{protocol}.{subset}", what=f"protocol and subset {protocol}.{subset}", fix=fix)


@dataclass(frozen=True)
class ExperimentDir:
    """``EXP_DIR``: a config.yml and the training runs made from it."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    def training(self, protocol: str, subset: str) -> TrainingDir:
        return TrainingDir(_run_folder(self.root / TRAIN, protocol, subset))

    def training_dirs(self) -> list[TrainingDir]:
        folder = self.root / TRAIN
        return sorted(TrainingDir(p) for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


@dataclass(frozen=True, order=True)
class TrainingDir:
    """``TRN_DIR = EXP_DIR/train/{PROTOCOL}.{subset}``: checkpoints, log and event file of a training run."""

    root: Path

    @property
    def weights(self) -> Path:
        return self.root / WEIGHTS

    @property
    def resume(self) -> Path:
        """The mid-epoch checkpoint written when a run is stopped."""
        return self.weights / RESUME

    @property
    def log(self) -> Path:
        return self.root / TRAIN_LOG

    @property
    def lock(self) -> Path:
        return self.root / TRAIN_LOCK

    @property
    def events(self) -> Path:
        return self.root / EVENTS

    @property
    def experiment(self) -> ExperimentDir:
        return ExperimentDir(self.root.parent.parent)

    def in_experiment(self) -> bool:
        """Whether this folder sits where ``train`` puts a TRN_DIR (``EXP_DIR/train/``, beside a config)."""
        return self.root.parent.name == TRAIN and self.experiment.config.is_file()

    def checkpoint(self, name: CheckpointName) -> Path:
        """``weights/{epoch:04d}.pt`` (end of that epoch) or ``weights/{name}.pt`` (e.g. avg-top5)."""
        return self.weights / f"{checkpoint_label(name)}{CHECKPOINT_SUFFIX}"

    def epochs(self) -> list[int]:
        """Epochs whose end-of-epoch checkpoint file exists, in order."""
        return sorted(n for n in self._names() if isinstance(n, int))

    def named_checkpoints(self) -> list[str]:
        """Names of the weights made from several epochs (``avg-last10``, ``avg-top5``), sorted."""
        return sorted(n for n in self._names() if isinstance(n, str))

    def _names(self) -> list[CheckpointName]:
        names: list[CheckpointName] = []
        for entry in os.listdir(self.weights) if self.weights.is_dir() else []:
            if m := _EPOCH_FILE.match(entry):
                names.append(int(m.group(1)))
            elif m := _NAMED_FILE.match(entry):
                names.append(m.group(1))
        return names

    def validation(self, protocol: str, subset: str) -> ValidationDir:
        return ValidationDir(_run_folder(self.root / VALIDATE, protocol, subset))

    def validation_dirs(self) -> list[ValidationDir]:
        folder = self.root / VALIDATE
        return sorted(ValidationDir(p) for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


@dataclass(frozen=True, order=True)
class ValidationDir:
    """``VAL_DIR = TRN_DIR/validate_equal_error_rate/{PROTOCOL}.{subset}``."""

    root: Path

    @property
    def params(self) -> Path:
        """The chosen epoch, its EER, minDCFs and interval (rewritten atomically)."""
        return self.root / PARAMS

    @property
    def scores(self) -> Path:
        return self.root / SCORES

    @property
    def method(self) -> Path:
        """How the score files were made (windows or whole files)."""
        return self.scores / METHOD

    @property
    def log(self) -> Path:
        return self.root / VALIDATE_LOG

    @property
    def lock(self) -> Path:
        return self.root / VALIDATE_LOCK

    @property
    def events(self) -> Path:
        return self.root / EVENTS

    @property
    def training(self) -> TrainingDir:
        return TrainingDir(self.root.parent.parent)

    def is_validation_dir(self) -> bool:
        """Whether this folder sits where ``validate`` puts a VAL_DIR."""
        return self.root.parent.name == VALIDATE

    def score_file(self, name: CheckpointName) -> Path:
        return self.scores / f"{checkpoint_label(name)}.txt"

    def score_files(self) -> list[tuple[CheckpointName, Path]]:
        """Each checkpoint's raw score file in ``scores/`` (``0007.txt``, ``avg-top5.txt``), in no order."""
        files = self.scores.glob("*.txt") if self.scores.is_dir() else []
        return [(name, path) for path in files if (name := parse_checkpoint_name(path.stem)) is not None]

    def normalised_score_file(self, name: CheckpointName) -> Path:
        """The same trials' scores after AS-norm (``validate --score-norm asnorm``)."""
        return self.scores / f"{checkpoint_label(name)}{NORMALISED_SCORES_SUFFIX}"

    def cohort_file(self, name: CheckpointName) -> Path:  # the AS-norm cohort that normalised those scores
        return self.scores / f"{checkpoint_label(name)}{COHORT_SUFFIX}"

    def calibration_score_file(self, name: CheckpointName) -> Path:
        """The scores of the calibration trial list (``validate --calibration``) by the same checkpoint."""
        return self.scores / f"{checkpoint_label(name)}.calibration.txt"

    @property
    def apply_root(self) -> Path:
        return self.root / APPLY

    @property
    def apply_log(self) -> Path:
        return self.root / APPLY_LOG

    @property
    def apply_events(self) -> Path:
        return self.apply_root / EVENTS

    def extraction(self, name: CheckpointName, *, mode: str = DEFAULT_MODE,
                   step: float = DEFAULT_STEP) -> ExtractionDir:
        """The folder of the extraction of checkpoint ``name`` with this mode and ``--step``."""
        return ExtractionDir(self.apply_root / extraction_folder(name, mode=mode, step=step))

    def extracted(self) -> set[CheckpointName]:
        """The checkpoints that a folder of ``apply/`` holds an extraction of (any mode and step)."""
        names = os.listdir(self.apply_root) if self.apply_root.is_dir() else []
        found = (_EXTRACTION_FOLDER.match(n) for n in names if (self.apply_root / n).is_dir())
        return {int(m.group(1)) if m.group(1).isdigit() else m.group(1) for m in found if m}


def extraction_folder(name: CheckpointName, *, mode: str = DEFAULT_MODE, step: float = DEFAULT_STEP) -> str:
    """``4``, ``4-shared``, ``avg-top5-onnxruntime-step0.5``: the checkpoint, then what is not a default; so two
    extractions with other settings never share a folder (one would overwrite the other's files), and the
    default settings keep the tutorial's ``apply/{epoch}`` (unpadded epoch number)."""
    if mode not in MODES:
        raise ValueError(f"{mode!r} is not an extraction mode ({', '.join(MODES)})")
    if not step > 0:
        raise ValueError(f"step {step!r}: a fraction of the window > 0")
    parts = [str(name) if isinstance(name, int) else checkpoint_label(name)]
    if mode != DEFAULT_MODE:
        parts.append(mode)
    if float(step) != DEFAULT_STEP:
        # repr: the shortest text that reads back as the same float (0.5, 0.25, 1e-05)
        parts.append(f"step{float(step)!r}")
    return "-".join(parts)


def diarization_folder(*, collar: float = 0.0, skip_overlap: bool = False, num_speakers: str = "oracle") -> str:
    """Where a diarization setting's RTTMs go, relative to the extraction folder: ``""`` (beside
    the ``.npy``) for the defaults, else ``rttm-tuned-collar0.5-skip-overlap`` and the like."""
    parts = [] if num_speakers == "oracle" else [num_speakers]
    if float(collar) != 0.0:
        parts.append(f"collar{float(collar)!r}")
    if skip_overlap:
        parts.append("skip-overlap")
    return "-".join([RTTM_FOLDER, *parts]) if parts else ""


@dataclass(frozen=True, order=True)
class ExtractionDir:
    """``VAL_DIR/apply/{epoch}[-mode][-step]``: one ``{uri}.npy`` per file (nested uris as folders)
    and metadata.yml (see :func:`extraction_folder`)."""

    root: Path

    @property
    def metadata(self) -> Path:
        return self.root / METADATA

    @property
    def validation(self) -> ValidationDir:
        return ValidationDir(self.root.parent.parent)

    def embeddings(self, uri: str, *, source: str = "") -> Path:
        """``{uri}.npy`` inside this folder; PathError for a uri that would lead outside it."""
        return self._file(uri, ".npy", source)

    def rttm(self, uri: str, *, source: str = "", folder: str = "") -> Path:
        """``{uri}.rttm`` of the diarization check: beside the embeddings, or in ``folder`` (see
        :func:`diarization_folder`); PathError for an escaping uri."""
        path = self._file(uri, ".rttm", source)
        return self.root / folder / path.relative_to(self.root) if folder else path

    def _file(self, uri: str, suffix: str, source: str) -> Path:
        what = f"uri {uri!r}" + (f" of {source}" if source else "")
        contained_path(self.root, uri, what=what, fix="fix that line of the protocol's uri list (database.yml)")
        # appended, not replaced: a uri may hold dots (ES2004a.Mix-Headset)
        return self.root / f"{uri}{suffix}"


@dataclass(frozen=True)
class SweepDir:
    """SWEEP_DIR = (by default) BASE_EXP_DIR/sweeps/NAME: one experiment folder per trial, the SLURM
    array script of a ``--sbatch`` sweep, and the Optuna study's journal of an ``--optuna`` one."""

    root: Path

    @staticmethod
    def beside(base_exp_dir: Path, name: str) -> SweepDir:
        return SweepDir(base_exp_dir / SWEEPS / name)

    def trial(self, number: int) -> ExperimentDir:
        """Trial ``number``'s experiment folder (``trial-007``)."""
        return ExperimentDir(self.root / f"trial-{number:03d}")

    @property
    def script(self) -> Path:
        return self.root / SWEEP_SCRIPT

    @property
    def study(self) -> Path:
        return self.root / STUDY
