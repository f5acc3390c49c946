"""The run-folder layout (docs/directories.md): the one module that spells its paths.

::

    EXP_DIR/config.yml
    TRN_DIR = EXP_DIR/train/{PROTOCOL}.{subset}/
              weights/{epoch:04d}.pt  weights/resume.pt  weights/avg-last10.pt ...
              train.log  events.jsonl
    VAL_DIR = TRN_DIR/validate_equal_error_rate/{PROTOCOL}.{subset}/
              params.yml  scores/{epoch:04d}.txt  scores/{epoch:04d}.asnorm.txt  scores/method.yml
              validate.log  events.jsonl
    VAL_DIR/apply/{epoch}/{uri}.npy  metadata.yml     (VAL_DIR/apply/: apply.log, events.jsonl)

Value types that know their paths; the engine and the TUI both use them and nothing else builds
these paths. Torch-free, and free of any I/O beyond listing a folder.

A checkpoint is named by an epoch number (``7`` -> ``0007.pt``) or, for weights made from several
epochs, by a name (``avg-top5`` -> ``avg-top5.pt``); :data:`CheckpointName` is either.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.safe_paths import contained_path, unsafe_reason

CONFIG = "config.yml"
TRAIN = "train"
WEIGHTS = "weights"
RESUME = "resume.pt"
VALIDATE = "validate_equal_error_rate"
PARAMS = "params.yml"
SCORES = "scores"
METHOD = "method.yml"
APPLY = "apply"
METADATA = "metadata.yml"
EVENTS = "events.jsonl"
TRAIN_LOG = "train.log"
VALIDATE_LOG = "validate.log"
APPLY_LOG = "apply.log"

CheckpointName = int | str

_EPOCH_FILE = re.compile(r"^(\d{4,})\.pt$")
_NAMED_FILE = re.compile(r"^(avg-(?:last|top)\d+)\.pt$")
NAMED_CHECKPOINT = re.compile(r"^avg-(?:last|top)\d+$")

#: how messages name a VAL_DIR
VAL_DIR_SHAPE = f"TRN_DIR/{VALIDATE}/PROTOCOL.SUBSET"

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


def contained(root: Path, relative: str) -> Path | None:
    """``root/relative`` when it stays inside ``root`` (see :mod:`engine.safe_paths`), else None."""
    return None if unsafe_reason(relative) or "\\" in relative else Path(root) / relative


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
        return self.weights / f"{checkpoint_label(name)}.pt"

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

    def normalised_score_file(self, name: CheckpointName) -> Path:
        """The same trials' scores after AS-norm (``validate --score-norm asnorm``)."""
        return self.scores / f"{checkpoint_label(name)}.asnorm.txt"

    @property
    def apply_root(self) -> Path:
        return self.root / APPLY

    @property
    def apply_log(self) -> Path:
        return self.root / APPLY_LOG

    @property
    def apply_events(self) -> Path:
        return self.apply_root / EVENTS

    def extraction(self, name: CheckpointName) -> ExtractionDir:
        # apply/{epoch} keeps the tutorial's unpadded epoch number
        return ExtractionDir(self.apply_root / str(name))


@dataclass(frozen=True, order=True)
class ExtractionDir:
    """``VAL_DIR/apply/{epoch}``: one ``{uri}.npy`` per file (nested uris as folders) and metadata.yml."""

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

    def rttm(self, uri: str, *, source: str = "") -> Path:
        """``{uri}.rttm`` beside the embeddings (the diarization check); PathError for an escaping uri."""
        return self._file(uri, ".rttm", source)

    def _file(self, uri: str, suffix: str, source: str) -> Path:
        what = f"uri {uri!r}" + (f" of {source}" if source else "")
        contained_path(self.root, uri, what=what, fix="fix that line of the protocol's uri list (database.yml)")
        # appended, not replaced: a uri may hold dots (ES2004a.Mix-Headset)
        return self.root / f"{uri}{suffix}"
