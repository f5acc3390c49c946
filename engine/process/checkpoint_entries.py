"""What ``--resume`` and ``--init-from`` take from a checkpoint, checked before any of it is used.

``read_checkpoint`` checks each entry's kind for every reader; a resumed run uses more: entries a
reader may do without (an averaged file has no optimizer), the momentum, the interrupted epoch's
sums and the RNG states, each of which failed deep inside training with a traceback when edited
(or, for a momentum of NaN, blamed the learning rate). A fork reads the checkpoint's config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from engine.config import Config, config_from_dict, parse_config
from engine.errors import CheckpointError, ConfigError
from engine.process.checkpoint_payload import COUNT_LIMIT, is_weights
from engine.process.rng_states import rng_problem

#: what a resume restores: a checkpoint without one of them is no checkpoint ``train`` wrote
RESUMED = ("model", "loss", "optimizer", "epoch", "batch", "step", "speakers", "rng")

#: a momentum is a running sum of gradients, and one step adds lr times it to the weights: values beyond
#: the square root of float32's range overflow in the first product of the network they move, and the run
#: stopped on a NaN loss that blamed the learning rate
MOMENTUM_LIMIT = math.sqrt(torch.finfo(torch.float32).max)


_RESUME_FIX = "delete it and resume from an earlier one (or train again)"


def _damaged(path: Path, why: str, fix: str = _RESUME_FIX) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} is damaged or edited: {why}; {fix}")


def check_resumable(path: Path, saved: Mapping[str, Any]) -> None:
    """Refuse, in one line, a checkpoint ``--resume`` cannot continue from.

    Raises
    ------
    CheckpointError
        Naming the first entry missing or unusable: the RNG states are tried on scratch
        generators of this interpreter, so the process's own are left as they are.
    """
    for name in RESUMED:
        if saved.get(name) is None:
            raise _damaged(path, f"it has no {name} entry, which --resume needs (every checkpoint `train` "
                                 "writes has one)")
    why = _momentum_problem(saved["optimizer"]) or _so_far_problem(saved.get("epoch_so_far")) \
        or rng_problem(saved["rng"])
    if why is not None:
        raise _damaged(path, why)


def _momentum_problem(optimizer: Mapping[str, Any]) -> str | None:
    for number, entry in optimizer["state"].items():
        buf = entry.get("momentum_buffer") if isinstance(entry, Mapping) else None
        if buf is None:  # the optimizer's own load refuses a state without one as another network's
            continue
        if not (is_weights(buf) and buf.is_floating_point()):
            kind = f"a {buf.dtype} {buf.layout} tensor" if isinstance(buf, torch.Tensor) else type(buf).__name__
            return f"its optimizer's momentum {number!r} is {kind}, not a dense real-valued tensor"
        if buf.numel() and not (bool(torch.isfinite(buf).all()) and float(buf.abs().max()) <= MOMENTUM_LIMIT):
            return (f"its optimizer's momentum {number!r} holds NaN, infinite or overflowing values (beyond "
                    f"{MOMENTUM_LIMIT:.1e})")
    return None


def _so_far_problem(so_far: Mapping[str, Any] | None) -> str | None:
    """What is wrong with the interrupted epoch's sums (absent ones count from 0, as the meter does)."""
    if so_far is None:
        return None
    for key, whole in (("loss_sum", False), ("steps", True), ("seconds", False)):
        value = so_far.get(key)
        if value is None:
            continue
        if whole:
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < COUNT_LIMIT
        else:
            ok = _number(value) and (key != "seconds" or value >= 0)
        if not ok:
            shown = repr(value) if isinstance(value, (int, float, str)) else type(value).__name__
            kind = "a whole number >= 0" if whole else "a finite number" + (" >= 0" if key == "seconds" else "")
            return f"epoch_so_far.{key} is {shown[:40]}, not {kind}"
    return None


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):  # a float of it must exist: 10**400 has none
        return abs(value) < COUNT_LIMIT
    return isinstance(value, float) and math.isfinite(value)


def checkpoint_config(path: Path, value: Any) -> Config:
    """The config a checkpoint holds (a mapping, or YAML text), by config.yml's rules.

    Raises
    ------
    CheckpointError
        When it is no config (the rule it breaks named).
    """
    source = f"{path} (config)"
    try:
        return parse_config(value, source) if isinstance(value, str) else config_from_dict(dict(value), source)
    except ConfigError as e:
        raise _damaged(path, f"its config is not one this release reads ({e})",
                       "use another checkpoint (or train it again)") from None
