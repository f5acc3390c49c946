"""The training's SGD, and the parameters weight decay must leave alone.

Weight decay pulls every weight towards 0, which regularises weights but not physical quantities:
SincNet's cut-off frequencies are in Hz (hundreds), their loss gradients tiny (~1e-5), so a decay of
1e-4 with momentum 0.9 would shrink every filter towards the lowest band within a long schedule. A
module names such parameters in ``NO_WEIGHT_DECAY``; they train in a group of their own without decay.

The SGD is PyTorch's, op for op, without ``torch.optim``: its optimizers import ``torch._dynamo`` the
first time one is built or stepped, 1.2 s of CPU on a 2-core machine, a quarter of the start of a short
training (and of every trial of a sweep). Its updates are ``torch.optim.SGD``'s (the per-tensor loop on
the CPU, the foreach kernels on a GPU, as PyTorch chooses), so a run trains to the same floats; its
state is ``torch.optim.SGD``'s too, so a checkpoint written by either loads in the other.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn

from engine.config import Config
from engine.training.schedulers import learning_rate

#: a group's settings beside its parameters, as torch.optim.SGD writes them in its state
_SETTINGS = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach", "differentiable",
             "fused")


class SGD:
    """Stochastic gradient descent with momentum (heavy ball or Nesterov) and weight decay, per group."""

    def __init__(self, groups: list[dict[str, Any]], lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, foreach: bool | None = None) -> None:
        """``foreach``: the foreach kernels or the per-tensor loop; None: as PyTorch chooses (on a GPU)."""
        defaults = {"lr": lr, "momentum": momentum, "dampening": 0, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": False, "foreach": foreach, "differentiable": False,
                    "fused": None}
        self.param_groups = [{**defaults, **group, "params": list(group["params"])} for group in groups]
        self.state: defaultdict[torch.Tensor, dict[str, torch.Tensor]] = defaultdict(dict)

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self) -> None:
        for p in self._params():
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            bufs = [self.state[p].get("momentum_buffer") for p in params]
            foreach = group["foreach"]
            if foreach is None:
                foreach = all(p.device.type == "cuda" for p in params)
            update = _foreach if foreach else _per_tensor
            update(params, [p.grad for p in params], bufs, group)
            if group["momentum"]:
                for p, buf in zip(params, bufs, strict=True):
                    self.state[p]["momentum_buffer"] = buf  # type: ignore[assignment]

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.SGD``'s format: parameters numbered in group order, state by number."""
        number = {id(p): i for i, p in enumerate(self._params())}
        groups = [{**{k: group[k] for k in _SETTINGS}, "params": [number[id(p)] for p in group["params"]]}
                  for group in self.param_groups]
        state = {number[id(p)]: dict(s) for p, s in self.state.items() if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Take the momentum of ``saved`` (a state of this optimizer's shape); the settings stay this
        optimizer's, the config's. torch.optim takes the checkpoint's back too: a momentum edited in
        config.yml before a resume was silently the old one, while the run recorded the new.

        Raises
        ------
        ValueError
            Saying what does not fit: the groups, or a momentum's shape.
        """
        groups = saved["param_groups"]
        sizes, theirs = [len(g["params"]) for g in self.param_groups], group_sizes(groups)
        if theirs != sizes:
            raise ValueError(f"its optimizer has groups of {theirs} parameters, this network's {sizes}")
        # the numbers the saved groups list, in turn, are this optimizer's parameters in turn
        listed = [n for g in groups for n in g["params"]]
        if not all(isinstance(n, int) for n in listed):
            raise ValueError("its optimizer lists parameters by other than numbers")
        by_number = dict(zip(listed, self._params(), strict=True))
        state: defaultdict[torch.Tensor, dict[str, torch.Tensor]] = defaultdict(dict)
        for number, entry in saved["state"].items():
            buf = entry.get("momentum_buffer") if isinstance(entry, dict) else None
            p = by_number.get(number)
            if p is None or not isinstance(buf, torch.Tensor) or buf.shape != p.shape:
                raise ValueError(f"its optimizer state {number!r} is no momentum of a parameter of this network")
            state[p]["momentum_buffer"] = buf.to(dtype=p.dtype, device=p.device)
        self.state = state


def group_sizes(groups: list[Any]) -> list[int] | None:
    """How many parameters each of a saved state's groups lists; None when they are no lists."""
    lists = [g.get("params") for g in groups]
    return [len(x) for x in lists] if all(isinstance(x, list) for x in lists) else None


def _per_tensor(params: list[torch.Tensor], grads: list[torch.Tensor], bufs: list[torch.Tensor | None],
                group: dict[str, Any]) -> None:
    """torch.optim.SGD's update on the CPU (its ``_single_tensor_sgd``, the same operations in turn)."""
    momentum, decay = group["momentum"], group["weight_decay"]
    for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
        if decay != 0:
            grad = grad.add(param, alpha=decay)
        if momentum != 0:
            buf = bufs[i]
            if buf is None:
                buf = bufs[i] = grad.detach().clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
        param.add_(grad, alpha=-group["lr"])


def _foreach(params: list[torch.Tensor], grads: list[torch.Tensor], bufs: list[torch.Tensor | None],
             group: dict[str, Any]) -> None:
    """torch.optim.SGD's update on a GPU (its ``_multi_tensor_sgd``: one kernel per operation and dtype)."""
    momentum, decay = group["momentum"], group["weight_decay"]
    together: dict[tuple[torch.device, torch.dtype], list[int]] = defaultdict(list)
    for i, p in enumerate(params):
        together[(p.device, p.dtype)].append(i)
    for indices in together.values():
        ps, gs = [params[i] for i in indices], [grads[i] for i in indices]
        if decay != 0:
            gs = list(torch._foreach_add(gs, ps, alpha=decay))
        if momentum != 0:
            fresh = any(bufs[i] is None for i in indices)
            if fresh:  # a first step: PyTorch goes tensor by tensor
                for n, i in enumerate(indices):
                    buf = bufs[i]
                    if buf is None:
                        bufs[i] = gs[n].detach().clone()
                    else:
                        buf.mul_(momentum).add_(gs[n], alpha=1 - group["dampening"])
            moving = [buf for buf in (bufs[i] for i in indices) if buf is not None]  # every one, now
            if not fresh:
                torch._foreach_mul_(moving, momentum)
                torch._foreach_add_(moving, gs, alpha=1 - group["dampening"])
            if group["nesterov"]:
                torch._foreach_add_(gs, moving, alpha=momentum)
            else:
                gs = moving
        torch._foreach_add_(ps, gs, alpha=-group["lr"])


def _undecayed(net: nn.Module) -> set[int]:
    """The ids of the parameters of ``net``'s modules that name them in ``NO_WEIGHT_DECAY``."""
    return {id(getattr(module, name)) for module in net.modules()
            for name in getattr(module, "NO_WEIGHT_DECAY", ())}


def build_optimizer(net: nn.Module, config: Config) -> SGD:
    """SGD over ``net``'s parameters as ``config.optimizer`` says; with weight decay, those that must not
    decay form a second group without it."""
    opt = config.optimizer
    params = list(net.parameters())
    kept = _undecayed(net) if opt.weight_decay else set()
    groups: list[dict[str, Any]] = [{"params": [p for p in params if id(p) not in kept]}]
    if kept:
        groups.append({"params": [p for p in params if id(p) in kept], "weight_decay": 0.0})
    return SGD(groups, lr=learning_rate(config.scheduler, 0, 1, 1), momentum=opt.momentum,
               nesterov=opt.nesterov and opt.momentum > 0, weight_decay=opt.weight_decay)


def load_optimizer_state(optimizer: SGD, net: nn.Module, state: dict[str, Any]) -> None:
    """Load ``state`` into ``optimizer``; the one group of a checkpoint written before the frequencies had
    their own is split as the optimizer's groups are (every parameter keeps its momentum).

    Raises
    ------
    ValueError
        When ``state`` is not of this network's optimizer.
    """
    if len(state["param_groups"]) == 1 and len(optimizer.param_groups) == 2:
        (saved,) = state["param_groups"]
        position = {id(p): i for i, p in enumerate(net.parameters())}
        if group_sizes([saved]) != [len(position)]:
            raise ValueError(f"its optimizer has groups of {group_sizes([saved])} parameters, this network "
                             f"{len(position)}")
        state = {**state, "param_groups": [
            {**saved, "params": [saved["params"][position[id(p)]] for p in group["params"]]}
            for group in optimizer.param_groups]}
    optimizer.load_state_dict(state)
