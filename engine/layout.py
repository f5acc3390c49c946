"""The run-folder layout (DESIGN.md, "Directories"): the one module that spells its paths.

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


def contained(root: Path, relative: str) -> Path | None:
    """``root/relative`` when it stays inside ``root`` (no ``..``, no absolute part), else None.

    Uris and names come from files others wrote (protocol lists, event files); they must never
    make a path outside the folder the command writes into.
    """
    if not relative or "\x00" in relative or os.path.isabs(relative) or "\\" in relative:
        return None
    parts = relative.split("/")
    if any(p in ("..", ".", "") for p in parts):
        return None
    return Path(root).joinpath(*parts)


@dataclass(frozen=True)
class ExperimentDir:
    """``EXP_DIR``: a config.yml and the training runs made from it."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    def training(self, protocol: str, subset: str) -> TrainingDir:
        return TrainingDir(self.root / TRAIN / f"{protocol}.{subset}")

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
        return ValidationDir(self.root / VALIDATE / f"{protocol}.{subset}")

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

    def embeddings(self, uri: str) -> Path | None:
        """``{uri}.npy`` inside this folder; None when the uri would lead outside it."""
        return _with_suffix(contained(self.root, uri), ".npy")

    def rttm(self, uri: str) -> Path | None:
        """``{uri}.rttm`` beside the embeddings (the diarization check); None for an escaping uri."""
        return _with_suffix(contained(self.root, uri), ".rttm")


def _with_suffix(path: Path | None, suffix: str) -> Path | None:
    # appended, not replaced: a uri may hold dots (ES2004a.Mix-Headset)
    return None if path is None else path.with_name(path.name + suffix)
