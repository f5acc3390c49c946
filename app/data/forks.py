"""What a fork of a run's epoch or averaged weights starts with: the config form's and launch form's prefill.

A plain fork (``f``) offers the parent's config unchanged; a large-margin fork (``l``) the parent's
config under the ``large_margin`` fork template (WeSpeaker's fine-tuning stage), 5 epochs, and its
classifier reused where the fork trains the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.data.experiments import fork_folder
from engine.config import config_from_dict
from engine.config.forks import LARGE_MARGIN_EPOCHS, fork_dict
from engine.errors import ConfigError
from engine.records import Checkpoint, Run


@dataclass(frozen=True)
class ForkPlan:
    """A fork to offer: its config (plain data), the experiment folder suggested, the checkpoint it
    starts from, what it is (``fork from 3``), the fork template applied to the parent's config (None:
    none), and the launch form's ``--init-classifier`` and ``--to`` (None: the form's default)."""

    config: dict[str, Any]
    folder: Path
    init_from: str
    what: str
    template: str | None = None
    init_classifier: bool = False
    to: int | None = None


def checkpoint_key(checkpoint: Checkpoint) -> str:
    """The epoch table's row key of a checkpoint: its epoch, or the name of averaged weights."""
    return checkpoint.name or str(checkpoint.epoch)


def _parent(train: Run) -> tuple[dict[str, Any], Path] | str:
    """The parent's recorded config and experiment folder, else why there is none."""
    if not isinstance(train.config, dict) or not train.exp_dir:
        return f"run #{train.id} has no recorded config and experiment to start the fork from"
    return train.config, Path(train.exp_dir)


def plain_fork(root: Path, train: Run, checkpoint: Checkpoint) -> ForkPlan | str:
    """The parent's config as it is, from ``checkpoint`` (else why not, one line)."""
    parent = _parent(train)
    if isinstance(parent, str):
        return parent
    config, exp = parent
    key = checkpoint_key(checkpoint)
    return ForkPlan(config, fork_folder(root, exp, key), str(checkpoint.path), f"fork from {key}")


def large_margin_fork(root: Path, train: Run, checkpoint: Checkpoint) -> ForkPlan | str:
    """The parent's config under the large-margin template, from ``checkpoint`` (else why not, one line).

    The classifier comes along (``--init-classifier``) only from an epoch (averaged weights hold
    none) of a run trained without speed perturbation: with it, the parent classified each speed's
    copy of a speaker, classes the fork (never speed-perturbed) no longer trains.
    """
    parent = _parent(train)
    if isinstance(parent, str):
        return parent
    config, exp = parent
    try:
        aug = config_from_dict(config, source=f"run #{train.id}'s config").augmentation
        speeds = bool(aug and aug.speeds)
        forked = fork_dict(config)
    except ConfigError as e:
        return f"cannot make a large-margin fork of run #{train.id}: {e}"
    key = checkpoint_key(checkpoint)
    return ForkPlan(forked, fork_folder(root, exp, key, kind="lm"), str(checkpoint.path),
                    f"large-margin fork from {key}", template="large_margin",
                    init_classifier=checkpoint.name is None and not speeds, to=LARGE_MARGIN_EPOCHS)
