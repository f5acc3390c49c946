"""``train --init-from CHECKPOINT``: start a new run from another run's network ("fork").

The new run has its own config and experiment; only the network's weights (and, with
``--init-classifier``, the loss's classifier) come from the checkpoint. The optimizer,
the step and the schedules start afresh, as WeSpeaker's large-margin fine-tuning stage
does (``wespeaker/bin/train.py --checkpoint`` with a new config). The run records where
it came from: the checkpoint path, its epoch and the run that wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.config import Config, config_diff, config_to_dict, dump_yaml, load_config
from engine.config.forks import LARGE_MARGIN_EPOCHS, fork_dict
from engine.console import out_text
from engine.errors import TrainingError
from engine.layout import CONFIG
from engine.model import build_model
from engine.process import checkpoints as ckpt
from engine.process.checkpoint_entries import checkpoint_config
from engine.requests import ConfigLargeMarginRequest

_FIX = (f"fork from a checkpoint of this config's architecture (or set {CONFIG}'s architecture and "
        "feature_extraction to those of the checkpoint's run)")

#: sections whose difference makes a network's weights meaningless in the new run
_NETWORK_SECTIONS = ("architecture", "feature_extraction")


@dataclass(frozen=True)
class InitFrom:
    """A checkpoint to start from, checked against the new run's config and speakers; its path,
    epoch and sha256 are the new run's lineage (``engine.process.lifecycle``)."""

    path: Path
    epoch: int | None
    sha256: str  # of the file as read
    model: dict[str, Any]
    loss: dict[str, Any] | None  # the classifier, only with --init-classifier
    classes: list[str]  # the training classes of the checkpoint's run

    def for_speakers(self, speakers: list[str]) -> tuple[InitFrom, list[str]]:
        """With ``--init-classifier``, the classifier's rows of this run's speakers, by label (known once
        indexed), and the checkpoint's classes this run leaves out.

        A large-margin fork draws longer chunks: a speaker with no region that long is left out of
        it, and the classifier keeps the rows of the others. A speaker the checkpoint never
        classified is refused: its row would have to start from nothing.
        """
        if self.loss is None or self.classes == speakers:
            return self, []
        row = {label: i for i, label in enumerate(self.classes)}
        unknown = [s for s in speakers if s not in row]
        if unknown:
            raise TrainingError(f"--init-classifier: this run trains {len(unknown)} speaker(s) that {self.path} "
                                f"never classified (e.g. {unknown[0]!r}; its classifier has {len(self.classes)} "
                                "classes): it cannot be reused; drop --init-classifier to start a new classifier")
        rows = torch.tensor([row[s] for s in speakers])
        loss = {key: _rows(value, rows, len(self.classes)) if key.rpartition(".")[2] == "weight" else value
                for key, value in self.loss.items()}
        kept = set(speakers)
        return replace(self, loss=loss, classes=list(speakers)), [c for c in self.classes if c not in kept]

    def apply(self, model: nn.Module, loss: nn.Module) -> None:
        """Load the weights into the new run's network (and classifier)."""
        ckpt.fit_state(model, self.model, self.path, _FIX)
        model.load_state_dict(self.model)
        if self.loss is not None:
            ckpt.fit_state(loss, self.loss, self.path, "drop --init-classifier to start a new classifier")
            loss.load_state_dict(self.loss)


def _rows(value: Any, rows: torch.Tensor, classes: int) -> Any:
    """A classifier's ``weight`` with only the class rows ``rows``: its first axis holds one (or, for
    sub-centres, K consecutive) row(s) per class."""
    if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] % classes:
        return value
    per_class = value.shape[0] // classes
    return value.reshape(classes, per_class, *value.shape[1:])[rows].reshape(-1, *value.shape[1:]).clone()


def load_init(path: str | Path, *, config: Config, classifier: bool, trust: ckpt.Trust | None = None) -> InitFrom:
    """Read ``path`` (checked against its row by ``trust``) and check it can start a run of ``config``
    (before the data is indexed).

    Raises
    ------
    CheckpointError
        The file is missing, damaged, not a spkemb checkpoint, changed since its row recorded it,
        or its tensors are not those of ``config``'s network (the first differing one named).
    TrainingError
        Its network differs from ``config``'s (named by the first differing key), or, with
        ``classifier``, it was trained with another loss.
    """
    path = Path(path).resolve()
    loaded = ckpt.read_checkpoint(path, trust=trust)
    saved = loaded.payload
    ours, theirs = config_to_dict(config), config_to_dict(checkpoint_config(path, saved["config"]))
    for section in _NETWORK_SECTIONS:
        diff = config_diff({section: theirs[section]}, {section: ours[section]})
        if diff:
            key, there, mine = diff[0]
            raise TrainingError(f"--init-from {path}: its network differs from this experiment's config "
                                f"({key}: {there!r} there, {mine!r} here); fork with the same "
                                f"{section} section")
    loss = None
    if classifier:
        if theirs["task"]["name"] != ours["task"]["name"]:
            raise TrainingError(f"--init-classifier: {path} was trained with {theirs['task']['name']} "
                                f"and this run uses {ours['task']['name']}; drop --init-classifier")
        loss = saved.get("loss")
        if loss is None:
            raise TrainingError(f"--init-classifier: {path} holds no classifier (averaged weights keep the "
                                "network only); fork from an epoch checkpoint, or drop --init-classifier")
    # the network is cheap to build: a checkpoint whose tensors are not what its config says
    # (edited, or from another release) is told now rather than after indexing; built on a forked
    # RNG, so that the run draws exactly what it drew before this check existed
    with torch.random.fork_rng(devices=[]):
        network = build_model(config)
    ckpt.fit_state(network, saved["model"], path, _FIX)
    epoch = saved.get("epoch") if isinstance(saved.get("epoch"), int) else None
    return InitFrom(path=path, epoch=epoch, sha256=loaded.sha256, model=saved["model"], loss=loss,
                    classes=saved.get("speakers") or [])


def cmd_large_margin(args: ConfigLargeMarginRequest) -> int:
    """``spkemb-engine config large-margin PARENT``: print the large-margin fork's config of a checkpoint's
    run (its own config: a checkpoint describes itself) or of a config.yml / experiment directory.

    Returns 0; a bad config raises ConfigError, an unreadable checkpoint CheckpointError (one line, exit 2).
    """
    path = Path(args.parent)
    if path.suffix == ".pt" and not path.is_dir():
        parent = config_to_dict(checkpoint_config(path, ckpt.read_checkpoint(path).payload["config"]))
    else:
        parent = config_to_dict(load_config(path / CONFIG if path.is_dir() else path))
    # made whole before the first line is printed: `> fork.yml` keeps no header of a refused fork
    fork = dump_yaml(fork_dict(parent))
    out_text(f"# large-margin fine-tuning of {path} (engine/templates/large_margin.yml over its config);\n"
             f"# train it {LARGE_MARGIN_EPOCHS} epochs: spkemb-engine train --init-from CHECKPOINT "
             f"[--init-classifier] --to {LARGE_MARGIN_EPOCHS} NEW_EXP_DIR PROTOCOL\n" + fork)
    return 0
