"""Self-describing checkpoints, written so that a reader never sees half of one.

A checkpoint holds everything needed to continue exactly: the embedding network,
the loss's classifier, the optimizer, the epoch and step, the position in the
batch sequence, every RNG state, the resolved config and the package version.
It is written to a temporary file in the same folder, fsynced, renamed, and the
folder fsynced; only then may its database row be inserted (docs/training.md, "Checkpoints").
"""

from __future__ import annotations

import random
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.atomic import TMP_PREFIX, atomic_write, file_sha256  # noqa: F401 - file_sha256 re-exported
from engine.errors import CheckpointError
from engine.layout import CheckpointName, TrainingDir


def epoch_path(trn_dir: Path, epoch: CheckpointName) -> Path:
    """The checkpoint at the end of ``epoch`` (or the named one, e.g. ``avg-top5``)."""
    return TrainingDir(Path(trn_dir)).checkpoint(epoch)


def resume_path(trn_dir: Path) -> Path:
    """The mid-epoch checkpoint written when a run is stopped."""
    return TrainingDir(Path(trn_dir)).resume


def package_version() -> str:
    try:
        return version("spkemb")
    except PackageNotFoundError:
        return "unknown"


def rng_state() -> dict[str, Any]:
    """Every RNG the training process draws from."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename, fsync folder)."""
    payload = {**payload, "version": package_version()}
    return atomic_write(path, lambda f: torch.save(payload, f), mode="wb")


def sweep_stale(trn_dir: Path) -> list[Path]:
    """Remove temporary files left by a writer that was killed mid-save."""
    folder = TrainingDir(Path(trn_dir)).weights
    removed = []
    if folder.is_dir():
        for tmp in folder.glob(f"{TMP_PREFIX}*"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    CheckpointError
        When the file is missing, truncated or not one of ours.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: train first, or pick an epoch that has one")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several unrelated types for a damaged file
        raise CheckpointError(f"checkpoint {path} cannot be read ({e}): it is damaged; "
                              "delete it and resume from an earlier one") from e
    if not isinstance(payload, dict) or "model" not in payload or "config" not in payload:
        raise CheckpointError(f"{path} is not a spkemb checkpoint (no model/config inside)")
    return payload


def epochs_on_disk(trn_dir: Path) -> list[int]:
    """Epochs whose end-of-epoch checkpoint file exists, in order."""
    return TrainingDir(Path(trn_dir)).epochs()


def latest_checkpoint(trn_dir: Path) -> Path | None:
    """The checkpoint to resume from: the newer of ``resume.pt`` and the last epoch's file."""
    epochs = epochs_on_disk(trn_dir)
    last = epoch_path(trn_dir, epochs[-1]) if epochs else None
    mid = resume_path(trn_dir)
    if not mid.is_file():
        return last
    if last is None:
        return mid
    # one run writes both in sequence, so the later file is the later state; comparing times
    # spares loading two checkpoints (tens of MB each) only to read their step
    return mid if mid.stat().st_mtime_ns > last.stat().st_mtime_ns else last

