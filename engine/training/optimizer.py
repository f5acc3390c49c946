"""The training's SGD, and the parameters weight decay must leave alone.

Weight decay pulls every weight towards 0, which regularises weights but not physical quantities:
SincNet's cut-off frequencies are in Hz (hundreds), their loss gradients tiny (~1e-5), so a decay of
1e-4 with momentum 0.9 would shrink every filter towards the lowest band within a long schedule. A
module names such parameters in ``NO_WEIGHT_DECAY``; they train in a group of their own without decay.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from engine.config import Config
from engine.training.schedulers import learning_rate


def _undecayed(net: nn.Module) -> set[int]:
    """The ids of the parameters of ``net``'s modules that name them in ``NO_WEIGHT_DECAY``."""
    return {id(getattr(module, name)) for module in net.modules()
            for name in getattr(module, "NO_WEIGHT_DECAY", ())}


def build_optimizer(net: nn.Module, config: Config) -> torch.optim.SGD:
    """SGD over ``net``'s parameters as ``config.optimizer`` says; with weight decay, those that must not
    decay form a second group without it."""
    opt = config.optimizer
    params = list(net.parameters())
    kept = _undecayed(net) if opt.weight_decay else set()
    groups: list[dict[str, Any]] = [{"params": [p for p in params if id(p) not in kept]}]
    if kept:
        groups.append({"params": [p for p in params if id(p) in kept], "weight_decay": 0.0})
    return torch.optim.SGD(groups, lr=learning_rate(config.scheduler, 0, 1, 1), momentum=opt.momentum,
                           nesterov=opt.nesterov and opt.momentum > 0, weight_decay=opt.weight_decay)


def load_optimizer_state(optimizer: torch.optim.Optimizer, net: nn.Module, state: dict[str, Any]) -> None:
    """Load ``state`` into ``optimizer``; the one group of a checkpoint written before the frequencies had
    their own is split as the optimizer's groups are (every parameter keeps its momentum)."""
    if len(state["param_groups"]) == 1 and len(optimizer.param_groups) == 2:
        (saved,) = state["param_groups"]
        position = {id(p): i for i, p in enumerate(net.parameters())}
        state = {**state, "param_groups": [
            {**saved, **({"weight_decay": 0.0} if n else {}),
             "params": [saved["params"][position[id(p)]] for p in group["params"]]}
            for n, group in enumerate(optimizer.param_groups)]}
    optimizer.load_state_dict(state)
