"""The network of a checkpoint, ready for extraction: eval mode, on its device, weight norm folded in.

What ``validate`` (trial embeddings), ``apply`` and ``export`` load a checkpoint with; the windows
they embed are :mod:`engine.inference.windows`'.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from engine.config import Config
from engine.model import FbankNetwork, SincTDNN, build_model
from engine.process.checkpoint_entries import checkpoint_config
from engine.process.checkpoints import Loaded, Trust, fit_state, read_checkpoint

M = TypeVar("M", bound=nn.Module)


def inference_model(model: M, device: torch.device | str = "cpu") -> M:
    """A copy of ``model`` for extraction: eval mode, on ``device``, weight norm folded in.

    Weight normalisation (TDNN layers) recomputes each weight from ``g`` and ``v`` at every
    call; folding it once gives the same weights and saves that work on every batch.
    """
    model = copy.deepcopy(model).to(device).eval()
    for module in model.modules():
        if parametrize.is_parametrized(module):
            # torch types a module's attributes as Tensor | Module; parametrize keeps a ModuleDict here
            parametrizations = cast(nn.ModuleDict, module.parametrizations)
            for name in list(parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@dataclass(frozen=True)
class Network:
    """The network of a checkpoint ready for extraction, its resolved config, and the checkpoint read."""

    model: SincTDNN | FbankNetwork
    config: Config
    checkpoint: Loaded


def load_network(path: str | Path, device: torch.device | str = "cpu", *, trust: Trust | None = None) -> Network:
    """The network of a checkpoint (checked against its row by ``trust``), ready for extraction
    (see :func:`inference_model`).

    Raises
    ------
    CheckpointError
        The file cannot be used (see ``read_checkpoint``), or its tensors are not those of the
        network its config describes (the first differing one named).
    """
    loaded = read_checkpoint(Path(path), map_location="cpu", trust=trust)
    config = checkpoint_config(Path(path), loaded.payload["config"])
    model = build_model(config)
    fit_state(model, loaded.payload["model"], Path(path), "its weights and its config disagree (an edited or "
              "damaged file): use another epoch, or train again")
    model.load_state_dict(loaded.payload["model"])
    return Network(inference_model(model, device), config, loaded)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Config, dict]:
    """:func:`load_network` as (model, config, the whole checkpoint)."""
    network = load_network(path, device)
    return network.model, network.config, network.checkpoint.payload
