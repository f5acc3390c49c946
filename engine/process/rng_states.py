"""Every RNG a training process draws from, saved in its checkpoints and restored on ``--resume``: as
tensors and plain numbers, so that a checkpoint stays loadable as data only (weights-only)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """Every RNG the training process draws from, as tensors and plain numbers (weights-only loadable)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [int(version), [int(k) for k in internal], gauss],
        "numpy": [str(name), [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _python(state: Any) -> tuple[Any, ...]:
    version, internal, gauss = state
    return int(version), tuple(int(k) for k in internal), gauss


def _numpy(state: Any) -> tuple[Any, ...]:
    name, keys, pos, has_gauss, cached = state
    return str(name), np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)


def rng_problem(state: Mapping[str, Any]) -> str | None:
    """Why :func:`set_rng_state` cannot restore ``state`` here (``rng.numpy is …``), or None: each state is
    set on a scratch generator of this interpreter, whose own rules (sizes, ranges) judge it, and the
    process's generators stay as they are."""
    trials = (("python", lambda s: random.Random().setstate(_python(s))),
              ("numpy", lambda s: np.random.RandomState().set_state(_numpy(s))),
              ("torch", lambda s: torch.Generator().set_state(s)))
    for name, trial in trials:
        try:
            trial(state[name])
        except (TypeError, ValueError, OverflowError, IndexError, RuntimeError) as e:
            why = (str(e).strip().splitlines() or [type(e).__name__])[0]
            return f"rng.{name} is no state of this interpreter's generator ({why[:120]})"
    if "cuda" in state and torch.cuda.is_available():
        size = torch.cuda.get_rng_state().shape
        if not isinstance(state["cuda"], list) or not all(
                isinstance(s, torch.Tensor) and s.dtype == torch.uint8 and s.shape == size for s in state["cuda"]):
            return f"rng.cuda is not a list of this GPU's generator states (uint8 tensors of {list(size)})"
    return None


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s states (also those of earlier releases: tuples and a numpy array)."""
    random.setstate(_python(state["python"]))
    np.random.set_state(_numpy(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        # a run resumed where fewer GPUs are visible (one slot of a node it trained on whole) keeps theirs
        for index, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
